import Foundation
import Logging
import RunwardenClient
import RunwardenCore
import Subprocess
import SystemPackage

/// Runs one claimed task as a child process in its own process group, and spools its reports:
/// `running` once the process has started, then exactly one terminal report.
struct TaskExecution: Sendable {
    let task: ClaimedTask
    let configuration: RunnerConfiguration
    let spool: ReportSpool
    let stop: StopSignal
    let logger: Logger

    func run() async {
        let directories: (work: URL, log: URL)
        do {
            directories = try prepareDirectories()
        } catch {
            await report(.failed, error: TaskError(code: TaskErrorCode.launchFailed, message: "cannot prepare the work directory: \(error)"))
            return
        }
        let log = LogSink(url: directories.log, tailBytes: configuration.stderrTailBytes)
        let outcome: Outcome
        do {
            outcome = try await launch(in: directories.work, log: log)
        } catch {
            log.close()
            await report(.failed, error: TaskError(code: TaskErrorCode.launchFailed, message: "cannot start \(task.command.first ?? "the command"): \(error)"))
            return
        }
        log.close()
        switch outcome.stopReason {
        case .timedOut:
            let seconds = task.timeoutS.map { "\($0) s" } ?? "its limit"
            await report(.timedOut, error: TaskError(code: TaskErrorCode.timeout, message: "the task did not finish within \(seconds)" + tail(log)))
        case .canceled, .shutdown:
            let why = outcome.stopReason == .shutdown ? "the runner shut down" : "the task was canceled"
            await report(.canceled, error: TaskError(code: TaskErrorCode.canceled, message: why))
        case nil:
            switch outcome.status {
            case .exited(0):
                await report(.succeeded, exitCode: 0)
            case .exited(let code):
                await report(
                    .failed, exitCode: Int(code),
                    error: TaskError(code: TaskErrorCode.exitCode, message: "the command exited with code \(code)" + tail(log)))
            case .signaled(let signal):
                await report(.failed, error: TaskError(code: TaskErrorCode.exitCode, message: "the command was killed by signal \(signal)" + tail(log)))
            }
        }
    }

    private struct Outcome {
        var status: TerminationStatus
        var stopReason: StopReason?
    }

    /// Starts the process; reports `running` from inside, once it exists. Returns when it ended.
    private func launch(in workDirectory: URL, log: LogSink) async throws -> Outcome {
        var options = PlatformOptions()
        options.processGroupID = 0  // its own group, so a stop reaches every process it started
        let grace = configuration.killGrace
        let timeout = task.timeoutS
        let result = try await Subprocess.run(
            Self.executable(task.command[0]), arguments: Arguments(Array(task.command.dropFirst())),
            environment: .custom(environment(workDirectory: workDirectory)),
            workingDirectory: FilePath(workDirectory.path), platformOptions: options,
            input: .none, output: .sequence, error: .sequence
        ) { execution -> StopReason? in
            await report(.running)
            return try await withThrowingTaskGroup(of: StopReason?.self) { group in
                group.addTask {
                    for try await chunk in execution.standardOutput { chunk.withUnsafeBytes { log.write($0, isStderr: false) } }
                    return nil
                }
                group.addTask {
                    for try await chunk in execution.standardError { chunk.withUnsafeBytes { log.write($0, isStderr: true) } }
                    return nil
                }
                group.addTask {
                    guard let reason = await waitForStop(timeout: timeout) else { return nil }
                    try? execution.send(signal: .terminate, toProcessGroup: true)
                    try? await Task.sleep(for: grace)
                    try? execution.send(signal: .kill, toProcessGroup: true)
                    return reason
                }
                // Both pipes closed: the process is gone (or at least done writing).
                _ = try await group.next()
                _ = try await group.next()
                group.cancelAll()
                var stopped: StopReason?
                while let reason = try await group.next() { stopped = stopped ?? reason }
                if let stopped { return stopped }
                return await stop.reason
            }
        }
        return Outcome(status: result.terminationStatus, stopReason: result.closureResult)
    }

    /// The first of: a stop request, the task's timeout. Nil when cancelled (the task ended).
    private func waitForStop(timeout: Int?) async -> StopReason? {
        await withTaskGroup(of: StopReason?.self) { group in
            group.addTask { await stop.wait() }
            if let timeout {
                group.addTask {
                    guard (try? await Task.sleep(for: .seconds(timeout))) != nil else { return nil }
                    return .timedOut
                }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if let first, first == .timedOut { await stop.fire(.timedOut) }
            return first
        }
    }

    private func prepareDirectories() throws -> (work: URL, log: URL) {
        let root = URL(fileURLWithPath: configuration.workDir)
        let work =
            task.workspace.map { root.appendingPathComponent("workspaces").appendingPathComponent(Self.safeName($0)) }
            ?? root.appendingPathComponent("tasks").appendingPathComponent(Self.safeName(task.id))
        let logs = root.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        return (work, logs.appendingPathComponent("\(Self.safeName(task.id)).\(task.attempt).log"))
    }

    /// The runner's environment, the task's `env` over it, and a few variables naming the task.
    private func environment(workDirectory: URL) -> [Environment.Key: String] {
        var values = ProcessInfo.processInfo.environment
        for (key, value) in task.env { values[key] = value }
        values["RUNWARDEN_RUN_ID"] = task.runId
        values["RUNWARDEN_TASK_ID"] = task.id
        values["RUNWARDEN_TASK_NAME"] = task.name
        values["RUNWARDEN_ATTEMPT"] = String(task.attempt)
        values["RUNWARDEN_WORKSPACE"] = workDirectory.path
        return Dictionary(uniqueKeysWithValues: values.map { (Environment.Key(stringLiteral: $0.key), $0.value) })
    }

    private func report(_ status: TaskStatus, exitCode: Int? = nil, error: TaskError? = nil) async {
        var members: [JSONValue.Member] = [
            .init("status", .string(status.rawValue)), .init("attempt", .int(Int64(task.attempt))),
            .init("timestamp", .string(Timestamp(Date()).iso8601)),
        ]
        if let exitCode { members.append(.init("exit_code", .int(Int64(exitCode)))) }
        if let error {
            members.append(.init("error", .object(["code": .string(error.code), "message": .string(error.message)])))
        }
        var metadata: Logger.Metadata = ["run_id": "\(task.runId)", "task_id": "\(task.id)", "status": "\(status.rawValue)"]
        if let error { metadata["error"] = "\(error.code)" }
        logger.info("task \(status.rawValue)", metadata: metadata)
        do {
            try await spool.enqueue(taskID: task.id, body: .object(members))
        } catch {
            logger.critical("cannot spool a report", metadata: ["task_id": "\(task.id)", "error": "\(error)"])
        }
    }

    private func tail(_ log: LogSink) -> String {
        let text = log.stderrTail
        return text.isEmpty ? "" : "\n--- last \(text.utf8.count) bytes of stderr ---\n" + text
    }

    static func executable(_ program: String) -> Executable {
        program.contains("/") ? .path(FilePath(program)) : .name(program)
    }

    /// A name safe as one path component.
    static func safeName(_ name: String) -> String {
        let cleaned = String(name.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" })
        return cleaned.hasPrefix(".") ? "_" + cleaned : cleaned
    }
}
