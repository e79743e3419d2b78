import Foundation
import RunwardenClient
import RunwardenCore

/// Where a task runs and logs under `--work-dir`: `workspaces/NAME` for a task with a
/// workspace, else `tasks/TASK_ID`; its log is `logs/TASK_ID.ATTEMPT.log`. Names are used
/// as given, one path component each, only when they are valid (SPEC §6) — never rewritten,
/// because a rewrite maps two names to one directory (`a/b` and `a_b` did).
struct TaskDirectories {
    var work: URL
    var log: URL

    enum Problem: Error, CustomStringConvertible {
        case invalidName(kind: String, name: String)
        var description: String {
            switch self {
            case .invalidName(let kind, let name):
                "the \(kind) \(name.debugDescription) is refused: it \(WorkspaceName.rule)"
            }
        }
    }

    /// Checks the names and creates the directories.
    static func prepare(for task: ClaimedTask, workDir: String) throws -> TaskDirectories {
        // Task ids name a directory and a log file too, so they are held to the same rule.
        guard WorkspaceName.isValid(task.id) else { throw Problem.invalidName(kind: "task id", name: task.id) }
        if let workspace = task.workspace, !WorkspaceName.isValid(workspace) {
            throw Problem.invalidName(kind: "workspace", name: workspace)
        }
        let root = URL(fileURLWithPath: workDir)
        let work =
            task.workspace.map { root.appendingPathComponent("workspaces").appendingPathComponent($0, isDirectory: true) }
            ?? root.appendingPathComponent("tasks").appendingPathComponent(task.id, isDirectory: true)
        let logs = root.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        return TaskDirectories(work: work, log: logs.appendingPathComponent("\(task.id).\(task.attempt).log"))
    }
}
