import Foundation
import Testing
import RunwardenCore

@Suite("Snapshot rendering")
struct SnapshotTests {
    static let runKeys = [
        "id", "workflow", "status", "version", "run_attempt", "rerun_of", "reruns", "created_at", "updated_at", "started_at", "finished_at", "duration_ms",
        "error", "priority", "concurrency", "blocked_by", "progress", "tasks", "output_ref", "metadata", "links",
    ]
    static let taskKeys = [
        "id", "name", "status", "attempt", "priority", "runner", "workspace", "needs", "started_at", "finished_at", "exit_code", "error",
        "heartbeat_at", "blocked_by", "progress", "output_ref", "reused_from",
    ]
    static let progressKeys = [
        "total", "pending", "queued", "dispatched", "running", "canceling", "succeeded", "failed", "canceled",
        "timed_out", "skipped", "percent",
    ]

    static func keys(_ value: JSONValue?) -> [String] { value?.objectMembers?.map(\.key) ?? [] }

    @Test func aNewRunHasEverySpecFieldInOrderWithNullsWhereNothingHappenedYet() throws {
        let s = Scenario([task("build", workspace: "repo-a"), task("test", needs: ["build"])], metadata: .object(["sha": .string("abc")]))
        let snapshot = Rendered.run(s.run, lockHolders: [:])
        #expect(Self.keys(snapshot) == Self.runKeys)
        #expect(snapshot["id"] == .string("run_1"))
        #expect(snapshot["workflow"] == .string("deploy"))
        #expect(snapshot["status"] == .string("queued"))
        #expect(snapshot["version"] == .int(1))
        #expect(snapshot["run_attempt"] == .int(1), "a first run (re-runs count on from it, SPEC §10)")
        #expect(snapshot["created_at"] == .string("2026-01-01T00:00:00.000Z"))
        #expect(snapshot["updated_at"] == .string("2026-01-01T00:00:00.000Z"))
        for key in ["started_at", "finished_at", "duration_ms", "error", "output_ref"] {
            #expect(snapshot[key] == .null, "\(key) should be null")
        }
        #expect(snapshot["metadata"] == .object(["sha": .string("abc")]))

        guard case .array(let tasks) = snapshot["tasks"] else {
            Issue.record("tasks is not an array")
            return
        }
        #expect(tasks.count == 2)
        for task in tasks { #expect(Self.keys(task) == Self.taskKeys) }
        let build = tasks[0]
        #expect(build["id"] == .string(taskID("build")))
        #expect(build["name"] == .string("build"))
        #expect(build["status"] == .string("queued"))
        #expect(build["attempt"] == .int(1))
        #expect(build["workspace"] == .string("repo-a"))
        for key in ["runner", "started_at", "finished_at", "exit_code", "error", "heartbeat_at", "blocked_by", "progress", "output_ref"] {
            #expect(build[key] == .null, "task \(key) should be null")
        }
        #expect(tasks[1]["workspace"] == .null)
        #expect(build["needs"] == JSONValue(strings: []), "a task with no needs lists none (the graph's roots)")
        #expect(tasks[1]["needs"] == JSONValue(strings: ["build"]), "every need, met or not: the graph's edges")
    }

    @Test func nullsAreRenderedAsJSONNullNotLeftOut() throws {
        let s = Scenario([task("build")])
        let text = String(decoding: Rendered.run(s.run, lockHolders: [:]).encoded(), as: UTF8.self)
        #expect(text.contains(#""finished_at":null"#))
        #expect(text.contains(#""metadata":null"#))
        #expect(text.contains(#""blocked_by":null"#))
        #expect(text.contains(#""links":{"self":"/v1/runs/run_1""#))
    }

    @Test func linksPointAtTheRunsEndpoints() {
        #expect(
            Rendered.links("run_X")
                == .object([
                    "self": .string("/v1/runs/run_X"), "events": .string("/v1/runs/run_X/events"),
                    "stream": .string("/v1/runs/run_X/stream"), "cancel": .string("/v1/runs/run_X/cancel"),
                ]))
    }

    @Test func aRunListItemIsTheSnapshotWithoutTasks() {
        let s = Scenario([task("build")])
        let item = Rendered.run(s.run, lockHolders: [:], includeTasks: false)
        #expect(Self.keys(item) == Self.runKeys.filter { $0 != "tasks" })
    }

    @Test func aFinishedRunShowsItsTimesDurationAndOutput() throws {
        var s = Scenario([task("build")])
        try s.claim("build")
        let started = s.now
        try s.report("build", StatusReport(status: .running, progress: .init(done: 1, total: 2)))
        try s.report("build", StatusReport(status: .succeeded, exitCode: 0, outputRef: "s3://bucket/build/42", progress: .init(done: 2, total: 2)))
        let snapshot = Rendered.run(s.run, lockHolders: [:])
        #expect(snapshot["status"] == .string("succeeded"))
        #expect(snapshot["started_at"] == .string(started.iso8601))
        #expect(snapshot["finished_at"] == .string(s.now.iso8601))
        #expect(snapshot["duration_ms"] == .int(s.now.milliseconds - started.milliseconds))
        #expect(snapshot["output_ref"] == .string("s3://bucket/build/42"))
        #expect(snapshot["version"] == .int(Int64(s.version)))
        #expect(snapshot["updated_at"] == .string(s.now.iso8601))
        guard case .array(let tasks) = snapshot["tasks"], let build = tasks.first else {
            Issue.record("no tasks")
            return
        }
        #expect(build["runner"] == .string("host-a"))
        #expect(build["exit_code"] == .int(0))
        #expect(build["progress"] == .object(["done": .int(2), "total": .int(2)]))
        #expect(build["output_ref"] == .string("s3://bucket/build/42"))
        #expect(build["heartbeat_at"] == .string(started.iso8601))
    }

    @Test func aFailedRunsErrorCarriesTheTaskAndItsCause() throws {
        var s = Scenario([task("build")])
        try s.start("build")
        try s.report("build", .failed, exitCode: 2)
        let error = try #require(Rendered.run(s.run, lockHolders: [:])["error"])
        #expect(Self.keys(error) == ["code", "message", "task_id", "retryable", "cause"])
        #expect(error["code"] == .string("task_failed"))
        #expect(error["task_id"] == .string(taskID("build")))
        #expect(error["retryable"] == .bool(false))
        #expect(Self.keys(error["cause"]) == ["code", "message", "retryable"])
        #expect(error["cause"]?["code"] == .string("exit_code"))
    }

    @Test func aTimedOutRunsErrorIsRunTimeout() throws {
        var s = Scenario([task("build")], timeout: 5)
        s.runTimedOut()
        let error = try #require(Rendered.run(s.run, lockHolders: [:])["error"])
        #expect(error["code"] == .string("run_timeout"))
        #expect(error["retryable"] == .bool(false))
        #expect(error["task_id"] == nil)
    }

    // MARK: progress

    @Test func progressCountsTasksPerStatusAndTheyAddUpToTotal() throws {
        var s = Scenario([
            task("a"), task("b"), task("c"), task("d", needs: ["a"]), task("e"), task("f", allowFailure: true),
        ])
        try s.start("a")
        try s.report("a", .succeeded)  // d queued
        try s.claim("b")
        try s.start("c")
        try s.start("f")
        try s.report("f", .failed)
        let progress = Rendered.progress(s.run.tasks)
        #expect(Self.keys(progress) == Self.progressKeys)
        #expect(progress["total"] == .int(6))
        #expect(progress["succeeded"] == .int(1))
        #expect(progress["queued"] == .int(2))
        #expect(progress["dispatched"] == .int(1))
        #expect(progress["running"] == .int(1))
        #expect(progress["failed"] == .int(1))
        #expect(progress["pending"] == .int(0))
        let sum = TaskStatus.allCases.reduce(Int64(0)) { total, status in
            guard case .int(let count) = progress[status.rawValue] else { return total }
            return total + count
        }
        #expect(sum == 6)
        #expect(progress["percent"] == .int(33))  // 2 of 6 terminal
    }

    @Test(arguments: [
        (terminal: 0, total: 3, percent: Int64(0)),
        (terminal: 1, total: 3, percent: 33),
        (terminal: 2, total: 3, percent: 66),
        (terminal: 3, total: 3, percent: 100),
        (terminal: 1, total: 7, percent: 14),
        (terminal: 6, total: 7, percent: 85),
        (terminal: 199, total: 200, percent: 99),
    ])
    func percentIsTerminalTasksTimesOneHundredOverTotalRoundedDown(terminal: Int, total: Int, percent: Int64) {
        let tasks = (0..<total).map { index in
            var state = TaskState()
            state.status = index < terminal ? .succeeded : .running
            return RunTask(id: "task_\(index)", runID: "run_1", spec: task("t\(index)"), state: state)
        }
        #expect(Rendered.progress(tasks)["percent"] == .int(percent))
    }

    @Test func everyTerminalStatusCountsTowardsPercent() {
        let statuses: [TaskStatus] = [.succeeded, .failed, .canceled, .timedOut, .skipped]
        let tasks = statuses.enumerated().map { index, status in
            var state = TaskState()
            state.status = status
            return RunTask(id: "task_\(index)", runID: "run_1", spec: task("t\(index)"), state: state)
        }
        #expect(Rendered.progress(tasks)["percent"] == .int(100))
    }

    // MARK: blocked_by

    @Test func aPendingTaskIsBlockedByItsUnmetNeedsOnly() throws {
        var s = Scenario([task("a"), task("b"), task("c", needs: ["a", "b"])])
        #expect(Rendered.blockedBy(s["c"], in: s.run, lockHolders: [:]) == .object(["needs": JSONValue(strings: ["a", "b"])]))
        try s.start("a")
        try s.report("a", .succeeded)
        #expect(Rendered.blockedBy(s["c"], in: s.run, lockHolders: [:]) == .object(["needs": JSONValue(strings: ["b"])]))
    }

    @Test func aFailedNeedThatMayFailNoLongerBlocks() throws {
        var s = Scenario([task("lint", allowFailure: true), task("slow"), task("ship", needs: ["lint", "slow"])])
        try s.start("lint")
        try s.report("lint", .failed)
        #expect(Rendered.blockedBy(s["ship"], in: s.run, lockHolders: [:]) == .object(["needs": JSONValue(strings: ["slow"])]))
    }

    @Test func aQueuedTaskIsBlockedByTheTaskHoldingItsWorkspace() throws {
        var s = Scenario([task("a", workspace: "repo-a"), task("b", workspace: "repo-a"), task("c", workspace: "repo-c")])
        try s.claim("a")
        let holders = ["repo-a": taskID("a")]
        #expect(
            Rendered.blockedBy(s["b"], in: s.run, lockHolders: holders)
                == .object(["workspace": .string("repo-a"), "held_by": .string(taskID("a"))]))
        #expect(Rendered.blockedBy(s["c"], in: s.run, lockHolders: holders) == .null)
        #expect(Rendered.blockedBy(s["a"], in: s.run, lockHolders: holders) == .null, "a dispatched task is not blocked")
        let rendered = Rendered.run(s.run, lockHolders: holders)
        guard case .array(let tasks) = rendered["tasks"] else {
            Issue.record("no tasks")
            return
        }
        #expect(tasks[1]["blocked_by"]?["held_by"] == .string(taskID("a")))
    }

    @Test func aQueuedTaskIsNotBlockedByItsOwnLock() {
        let s = Scenario([task("a", workspace: "repo-a")])
        #expect(Rendered.blockedBy(s["a"], in: s.run, lockHolders: ["repo-a": taskID("a")]) == .null)
    }

    @Test func aNeedThatIsRunningStillBlocks() throws {
        var s = Scenario([task("a"), task("b", needs: ["a"])])
        try s.start("a")
        #expect(Rendered.blockedBy(s["b"], in: s.run, lockHolders: [:])["needs"] == JSONValue(strings: ["a"]))
    }

    // MARK: other renderings

    @Test func aTaskAnsweredOnItsOwnCarriesItsRunID() {
        let s = Scenario([task("build")])
        let rendered = Rendered.task(s["build"], in: s.run, lockHolders: [:], includeRunID: true)
        #expect(Self.keys(rendered) == ["id", "run_id"] + Self.taskKeys.dropFirst())
        #expect(rendered["run_id"] == .string("run_1"))
    }

    @Test func aClaimedShellCommandIsHandedOutAsBinShDashC() {
        let spec = TaskSpec(
            name: "test", command: .shell("make test"), env: ["CI": "1", "A": "2"], workspace: "repo", timeoutSeconds: 60,
            labels: ["linux"])
        var state = TaskState()
        state.attempt = 3
        let claimed = Rendered.claimed(RunTask(id: "task_1", runID: "run_1", spec: spec, state: state))
        #expect(Self.keys(claimed) == ["id", "run_id", "name", "command", "env", "workspace", "timeout_s", "attempt", "labels", "priority"])
        #expect(claimed["command"] == JSONValue(strings: ["/bin/sh", "-c", "make test"]))
        #expect(claimed["env"] == .object(["A": .string("2"), "CI": .string("1")]))
        #expect(claimed["timeout_s"] == .int(60))
        #expect(claimed["attempt"] == .int(3))
        #expect(claimed["labels"] == JSONValue(strings: ["linux"]))
    }

    @Test func anArgvCommandIsHandedOutAsIs() {
        let claimed = Rendered.claimed(RunTask(id: "task_1", runID: "run_1", spec: task("build"), state: TaskState()))
        #expect(claimed["command"] == JSONValue(strings: ["make", "build"]))
        #expect(claimed["workspace"] == .null)
        #expect(claimed["timeout_s"] == .null)
    }
}
