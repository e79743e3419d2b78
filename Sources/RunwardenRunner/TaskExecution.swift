import Foundation
import Logging
import RunwardenClient
import RunwardenCore
import Subprocess
import Synchronization
import SystemPackage

/// Runs one claimed task as a child process in its own process group, and spools its reports:
/// `running` once the process has started, then exactly one terminal report.
struct TaskExecution: Sendable {
    let task: ClaimedTask
    let configuration: RunnerConfiguration
    let spool: ReportSpool
    let ledger: ProcessGroupLedger
    let shipper: LogShipper
    let stop: StopSignal
    /// The server the runner talks to, for the task's `RUNWARDEN_SERVER_URL`.
    let serverURL: String
    let logger: Logger

    func run() async {
        let directories: TaskDirectories
        do {
            guard !task.command.isEmpty else { throw LaunchProblem.emptyCommand }
            directories = try TaskDirectories.prepare(for: task, workDir: configuration.workDir)
        } catch {
            await report(.failed, error: TaskError(.launchFailed, "cannot prepare the task: \(error)"))
            return
        }
        let log = LogSink(url: directories.log, tailBytes: configuration.stderrTailBytes, secrets: (task.secretEnv ?? [:]).values)
        let shipping = LogShipper.Key(taskID: task.id, attempt: task.attempt)
        await shipper.start(shipping)
        let outcome: Outcome
        do {
            outcome = try await launch(in: directories.work, log: log)
        } catch {
            log.close()
            let ended = Timestamp(Date())  // before the log's last shipment, which may take a while
            await shipper.finish(shipping)
            await report(.failed, error: TaskError(.launchFailed, "cannot start \(task.command[0]): \(error)"), at: ended)
            return
        }
        log.close()
        let ended = Timestamp(Date())  // before the log's last shipment, which may take a while
        await shipper.finish(shipping)
        switch outcome.stopReason {
        case .timedOut:
            let seconds = task.timeoutS.map { "\($0) s" } ?? "its limit"
            await report(.timedOut, error: TaskError(.timeout, "the task did not finish within \(seconds)" + tail(log)), at: ended)
        case .canceled, .shutdown:
            let why = outcome.stopReason == .shutdown ? "the runner shut down" : "the task was canceled"
            await report(.canceled, error: TaskError(.canceled, why), at: ended)
        case .leaseLost:
            // What the server concludes on its side too; by the time this report arrives the
            // task is usually retried or failed already, and the report is answered applied: false.
            await report(
                .failed,
                error: TaskError(
                    .heartbeatLost,
                    "the runner could not reach the server for a whole lease and stopped the task"), at: ended)
        case nil:
            switch outcome.status {
            case .exited(0):
                await report(.succeeded, exitCode: 0, at: ended)
            case .exited(let code):
                await report(
                    .failed, exitCode: Int(code),
                    error: TaskError(.exitCode, "the command exited with code \(code)" + tail(log)), at: ended)
            case .signaled(let signal):
                await report(.failed, error: TaskError(.exitCode, "the command was killed by signal \(signal)" + tail(log)), at: ended)
            }
        }
    }

    enum LaunchProblem: Error, CustomStringConvertible {
        case emptyCommand
        var description: String { "the command is empty" }
    }

    private struct Outcome {
        var status: TerminationStatus
        var stopReason: StopReason?
    }

    /// Starts the process; reports `running` from inside, once it exists. Returns when its whole
    /// process group is gone: the process has exited and whatever it left behind is stopped —
    /// the next task in the workspace must not meet it, as GitHub Actions stops orphan processes
    /// at the end of a job.
    private func launch(in workDirectory: URL, log: LogSink) async throws -> Outcome {
        var options = PlatformOptions()
        options.processGroupID = 0  // its own group, so a stop reaches every process it started
        let started = StartedGroup()
        do {
            let result = try await Subprocess.run(
                Self.executable(task.command[0]), arguments: Arguments(Array(task.command.dropFirst())),
                environment: .custom(environment(workDirectory: workDirectory)),
                workingDirectory: FilePath(workDirectory.path), platformOptions: options,
                input: .none, output: .sequence, error: .sequence
            ) { execution in
                let group = ProcessGroup(id: execution.processIdentifier.value)
                ledger.record(group, taskID: task.id)
                // Watches for a stop until the process group is gone — not only until the pipes
                // close: a task that closed its stdout and stderr must still be stoppable.
                started.set(group: group, watcher: Task { await stopWhenAsked(group) })
                await report(.running)
                await withTaskGroup(of: Void.self) { pipes in
                    // When the process exits, Subprocess ends these reads even if a child it
                    // left behind still holds the pipes open.
                    pipes.addTask { try? await Self.copy(execution.standardOutput, to: log, isStderr: false) }
                    pipes.addTask { try? await Self.copy(execution.standardError, to: log, isStderr: true) }
                }
            }
            let stopReason = await finish(started)
            return Outcome(status: result.terminationStatus, stopReason: stopReason)
        } catch {
            _ = await finish(started)
            throw error
        }
    }

    /// Stops what the process left in its group, then ends the stop watcher; the reason the
    /// watcher stopped the task, if it did.
    private func finish(_ started: StartedGroup) async -> StopReason? {
        guard let (group, watcher) = started.value else { return nil }
        await group.stop(grace: configuration.killGrace)
        watcher.cancel()
        let reason = await watcher.value
        if group.isEmpty { ledger.forget(group) }
        return reason
    }

    /// Waits for a stop request or the task's timeout, then stops the whole group. Nil when
    /// cancelled first (the task ended by itself).
    private func stopWhenAsked(_ group: ProcessGroup) async -> StopReason? {
        guard let reason = await waitForStop(timeout: task.timeoutS) else { return nil }
        logger.info("stopping the task's process group", metadata: ["task_id": "\(task.id)", "reason": "\(reason)"])
        await group.stop(grace: configuration.killGrace)
        return reason
    }

    /// The first of: a stop request, the task's timeout. Nil when cancelled (the task ended).
    private func waitForStop(timeout: Int?) async -> StopReason? {
        await withTaskGroup(of: StopReason?.self) { group in
            group.addTask { await stop.wait() }
            if let timeout {
                group.addTask {
                    guard (try? await Task.sleep(for: ServerValue.seconds(timeout))) != nil else { return nil }
                    return .timedOut
                }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if let first, first == .timedOut { await stop.fire(.timedOut) }
            return first
        }
    }

    private static func copy(_ sequence: SubprocessOutputSequence, to log: LogSink, isStderr: Bool) async throws {
        for try await chunk in sequence { chunk.withUnsafeBytes { log.write($0, isStderr: isStderr) } }
    }

    private func environment(workDirectory: URL) -> [Environment.Key: String] {
        let values = TaskEnvironment.make(
            inherited: ProcessInfo.processInfo.environment, task: task, workDirectory: workDirectory, serverURL: serverURL)
        return Dictionary(uniqueKeysWithValues: values.map { (Environment.Key(stringLiteral: $0.key), $0.value) })
    }

    private func report(_ status: TaskStatus, exitCode: Int? = nil, error: TaskError? = nil, at time: Timestamp = Timestamp(Date())) async {
        let body = StatusReport(status: status, attempt: task.attempt, exitCode: exitCode, error: error, timestamp: time)
        var metadata: Logger.Metadata = ["run_id": "\(task.runID)", "task_id": "\(task.id)", "status": "\(status.rawValue)"]
        if let error { metadata["error"] = "\(error.code)" }
        logger.info("task \(status.rawValue)", metadata: metadata)
        do {
            try await spool.enqueue(taskID: task.id, body: JSONValueEncoder.encode(body))
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
}

/// The group a launch started and the task watching it for a stop, handed from inside
/// Subprocess's closure to the code that cleans up after it (even when `run` throws).
private final class StartedGroup: Sendable {
    private let state = Mutex<(ProcessGroup, Task<StopReason?, Never>)?>(nil)

    func set(group: ProcessGroup, watcher: Task<StopReason?, Never>) { state.withLock { $0 = (group, watcher) } }
    var value: (ProcessGroup, Task<StopReason?, Never>)? { state.withLock { $0 } }
}
