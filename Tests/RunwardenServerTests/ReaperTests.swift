import Foundation
import RunwardenCore
import RunwardenServer
import RunwardenStore
import RunwardenStoreSQLite
import Synchronization
import Testing

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let now = Mutex(Timestamp(milliseconds: 1_900_000_000_000))
    func read() -> Timestamp { now.withLock { $0 } }
    func advance(seconds: Int) { now.withLock { $0 = $0.adding(seconds: seconds) } }
}

/// `RunService.reap()` on a real SQLite file, with a manual clock and a 30 s lease.
@Suite("reaper: lost leases and timeouts")
struct ReaperTests {
    let directory: TemporaryDirectory
    let clock = ManualClock()
    let service: RunService

    init() throws {
        directory = try TemporaryDirectory()
        let store = try SQLiteRunStore(path: directory.databasePath)
        let clock = clock
        service = RunService(store: store, leaseSeconds: 30, clock: { clock.read() }, logger: quietLogger)
    }

    func create(_ tasks: [TaskSpec], timeout: Int? = nil) async throws -> Run {
        let definition = RunDefinition(run: RunSpec(workflow: "reap", timeoutSeconds: timeout), tasks: tasks)
        guard case .created(let record) = try await service.create(definition, idempotency: nil) else {
            throw ReaperTestError.notCreated
        }
        return record.run
    }

    func claim(_ runner: String = "r1") async throws -> RunTask {
        guard case .task(let task, _) = try await service.claim(RunnerContact(name: runner), labels: [], wait: .zero) else { throw ReaperTestError.nothingToClaim }
        return task
    }

    func report(_ task: RunTask, _ status: TaskStatus, runner: String = "r1") async throws {
        _ = try await service.report(taskID: task.id, StatusReport(status: status, attempt: task.state.attempt), runner: runner)
    }

    @Test("a task whose runner stops heartbeating is queued again as attempt 2 and its lock is freed")
    func lostLeaseRetries() async throws {
        let run = try await create([TaskSpec(name: "a", command: .argv(["true"]), workspace: "repo", retries: 1)])
        let first = try await claim()
        try await report(first, .running)
        clock.advance(seconds: 29)
        #expect(try await service.reap() == 0)
        clock.advance(seconds: 2)
        #expect(try await service.reap() == 1)

        let task = try await service.run(run.id).run.tasks[0]
        #expect(task.status == .queued)
        #expect(task.state.attempt == 2)
        #expect(task.state.runner == nil)
        #expect(try await service.locks().isEmpty)
        let events = try await service.events(runID: run.id, after: 0, limit: 50, wait: .zero)
        #expect(events.last?.draft.type == "task.retrying")

        // The dead runner's late report is not applied; the retry goes to another runner.
        let late = try await service.report(taskID: first.id, StatusReport(status: .succeeded, attempt: 1), runner: "r1")
        #expect(late.applied == false)
        let retry = try await claim("r2")
        #expect(retry.state.attempt == 2)
        try await report(retry, .succeeded, runner: "r2")
        #expect(try await service.run(run.id).run.status == .succeeded)
    }

    @Test("a lost lease without retries fails the task with heartbeat_lost and the run with it")
    func lostLeaseFails() async throws {
        let run = try await create([TaskSpec(name: "a", command: .argv(["true"]))])
        _ = try await claim()
        clock.advance(seconds: 31)
        #expect(try await service.reap() == 1)
        let after = try await service.run(run.id).run
        #expect(after.tasks[0].status == .failed)
        #expect(after.tasks[0].state.error?.code == "heartbeat_lost")
        #expect(after.tasks[0].state.error?.retryable == true)
        #expect(after.status == .failed)
        #expect(after.state.error?.retryable == true)
    }

    @Test("heartbeats keep a task's lease alive")
    func heartbeatsKeepLease() async throws {
        let run = try await create([TaskSpec(name: "a", command: .argv(["true"]))])
        let task = try await claim()
        for _ in 0..<4 {
            clock.advance(seconds: 20)
            #expect(try await service.heartbeat(RunnerContact(name: "r1"), taskIDs: [task.id]).isEmpty)
            #expect(try await service.reap() == 0)
        }
        #expect(try await service.run(run.id).run.tasks[0].status == .dispatched)
    }

    @Test("a task past its timeout_s ends timed_out even with no runner reporting")
    func taskTimeoutWithoutRunner() async throws {
        let run = try await create([TaskSpec(name: "a", command: .argv(["sleep", "100"]), timeoutSeconds: 10)])
        let task = try await claim()
        try await report(task, .running)
        clock.advance(seconds: 9)
        #expect(try await service.heartbeat(RunnerContact(name: "r1"), taskIDs: [task.id]).isEmpty)
        #expect(try await service.reap() == 0)
        clock.advance(seconds: 2)
        #expect(try await service.reap() == 1)
        let after = try await service.run(run.id).run
        #expect(after.tasks[0].status == .timedOut)
        #expect(after.tasks[0].state.error?.code == "timeout")
        #expect(after.status == .failed)
    }

    @Test("a run past its timeout_s ends timed_out and its running task is asked to stop")
    func runTimeout() async throws {
        let run = try await create(
            [TaskSpec(name: "a", command: .argv(["true"])), TaskSpec(name: "b", command: .argv(["true"]), needs: ["a"])], timeout: 60)
        let task = try await claim()
        try await report(task, .running)
        clock.advance(seconds: 61)
        _ = try await service.heartbeat(RunnerContact(name: "r1"), taskIDs: [task.id])
        #expect(try await service.reap() == 1)
        let after = try await service.run(run.id).run
        #expect(after.status == .timedOut)
        #expect(after.state.error?.code == "run_timeout")
        #expect(after.tasks.map(\.status) == [.canceling, .canceled])
        #expect(try await service.heartbeat(RunnerContact(name: "r1"), taskIDs: [task.id]) == [task.id])
    }

    @Test("after a restart every claimed task gets one full lease before it can be reaped")
    func restartRenewsLeases() async throws {
        let run = try await create([TaskSpec(name: "a", command: .argv(["true"]))])
        _ = try await claim()
        clock.advance(seconds: 300)  // the server was down for five minutes
        #expect(try await service.renewLeases() == 1)
        #expect(try await service.reap() == 0)
        clock.advance(seconds: 31)
        #expect(try await service.reap() == 1)
        #expect(try await service.run(run.id).run.tasks[0].status == .failed)
    }

    /// The `runner.*` events of the global feed, as `type runner`.
    func runnerEvents() async throws -> [String] {
        try await service.events(runID: nil, after: 0, limit: 500, wait: .zero).compactMap { event in
            event.draft.runner.map { "\(event.draft.type) \($0)" }
        }
    }

    @Test("a runner silent for a lease is recorded lost while it holds a task, before the task is retried, and announced once")
    func silentRunnerWithTaskIsLost() async throws {
        _ = try await create([TaskSpec(name: "a", command: .argv(["true"]), retries: 1)])
        _ = try await claim("r1")
        #expect(try await service.runner("r1").status == .online)
        clock.advance(seconds: 31)
        // Before the reaper's pass the registry already tells: silent for a lease, holding a task.
        #expect(try await service.runner("r1").status == .lost)
        #expect(try await service.reap() == 1)  // the task's retry; the runner is not a run change
        #expect(try await service.runner("r1").status == .lost)
        for _ in 0..<3 { try await service.reap() }
        #expect(try await runnerEvents() == ["runner.online r1", "runner.lost r1"])
        let metrics = String(decoding: service.metrics.registry.emitToBuffer(), as: UTF8.self)
        #expect(metrics.contains(#"runwarden_transitions_total{type="runner.lost"} 1"#), "\(metrics)")

        // It comes back: online again, one event.
        _ = try await service.heartbeat(RunnerContact(name: "r1"), taskIDs: [])
        #expect(try await service.runner("r1").status == .online)
        #expect(try await runnerEvents() == ["runner.online r1", "runner.lost r1", "runner.online r1"])
    }

    @Test("an idle runner silent for a lease goes offline, not lost; a heartbeat within the lease keeps it online")
    func silentIdleRunnerIsOffline() async throws {
        _ = try await service.claim(RunnerContact(name: "idle"), labels: [], wait: .zero)
        _ = try await service.claim(RunnerContact(name: "alive"), labels: [], wait: .zero)
        clock.advance(seconds: 20)
        _ = try await service.heartbeat(RunnerContact(name: "alive"), taskIDs: [])
        clock.advance(seconds: 11)
        try await service.reap()
        #expect(try await service.runner("idle").status == .offline)
        #expect(try await service.runner("alive").status == .online)
        #expect(try await runnerEvents() == ["runner.online idle", "runner.online alive", "runner.offline idle"])
    }

    @Test("in the first lease after a start no runner is recorded gone: they could not reach a server that was down")
    func noRunnerGoneRightAfterStart() async throws {
        _ = try await service.claim(RunnerContact(name: "r1"), labels: [], wait: .zero)
        clock.advance(seconds: 300)
        try await service.reap(runners: false)
        #expect(try await runnerEvents() == ["runner.online r1"])
        try await service.reap()
        #expect(try await runnerEvents() == ["runner.online r1", "runner.offline r1"])
    }
}

enum ReaperTestError: Error { case notCreated, nothingToClaim }
