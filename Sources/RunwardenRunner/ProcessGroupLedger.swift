import Foundation
import Logging

/// The process groups of the tasks this runner started, recorded on disk under
/// `--work-dir/process-groups/` while they may be alive. A runner killed outright (SIGKILL, OOM,
/// power to the service but not the host) leaves its tasks running; its next life, with the
/// same work directory, reads these records and stops the groups that are still the same ones.
struct ProcessGroupLedger: Sendable {
    private struct Record: Codable {
        var pgid: pid_t
        var startTime: UInt64
        var session: pid_t
        var bootID: String
        var taskID: String
    }

    let directory: URL
    let logger: Logger

    init(workDir: String, logger: Logger) throws {
        directory = URL(fileURLWithPath: workDir).appendingPathComponent("process-groups")
        self.logger = logger
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Remembers the group of a process just started. It is still the runner's unreaped child,
    /// so /proc describes that very process and no other.
    func record(_ group: ProcessGroup, taskID: String) {
        guard let leader = ProcessTable.entry(group.id), let bootID = ProcessTable.bootID else {
            logger.debug("process identity unknown here; the group is not recorded", metadata: ["pgid": "\(group.id)"])
            return
        }
        let record = Record(pgid: group.id, startTime: leader.startTime, session: leader.session, bootID: bootID, taskID: taskID)
        do {
            try DurableFile.save(try JSONEncoder().encode(record), to: file(for: group))
        } catch {
            logger.error("cannot record a task's process group", metadata: ["task_id": "\(taskID)", "error": "\(error)"])
        }
    }

    /// The group is empty: nothing of it can be left for a later life to stop.
    func forget(_ group: ProcessGroup) {
        try? FileManager.default.removeItem(at: file(for: group))
    }

    /// Stops every recorded group that still holds processes of the recorded task (SIGTERM, then
    /// SIGKILL after `grace`), and forgets every record. Call before claiming anything.
    func stopLeftovers(grace: Duration) async {
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        for file in files {
            defer { try? FileManager.default.removeItem(at: file) }
            guard file.pathExtension == "json", let data = try? Data(contentsOf: file),
                let record = try? JSONDecoder().decode(Record.self, from: data)
            else { continue }
            guard Self.isStillAlive(record) else { continue }
            logger.warning(
                "stopping processes a previous run of this runner left behind",
                metadata: ["task_id": "\(record.taskID)", "pgid": "\(record.pgid)"])
            await ProcessGroup(id: record.pgid).stop(grace: grace)
        }
    }

    /// The group still holds a process of the recorded task: same boot, and either the leader
    /// itself (same start time) or — once the leader is gone, when Linux keeps its number
    /// reserved for the group — a member of the recorded session that started no earlier.
    private static func isStillAlive(_ record: Record) -> Bool {
        guard record.pgid > 1, ProcessTable.bootID == record.bootID else { return false }
        let members = ProcessTable.members(ofGroup: record.pgid)
        if let leader = members.first(where: { $0.pid == record.pgid }) { return leader.startTime == record.startTime }
        return members.contains { $0.session == record.session && $0.startTime >= record.startTime }
    }

    private func file(for group: ProcessGroup) -> URL { directory.appendingPathComponent("\(group.id).json") }
}
