import Testing
import RunwardenCore

@Suite("Run rollup")
struct RollupTests {
    @Test func theRunSucceedsWhenEveryTaskSucceeds() throws {
        var s = Scenario([task("build"), task("test", needs: ["build"])])
        try s.start("build")
        try s.report("build", .succeeded)
        #expect(s.run.status == .running)
        try s.start("test")
        try s.report("test", .succeeded)
        #expect(s.run.status == .succeeded)
        #expect(s.run.state.finishedAt == s.now)
        #expect(s.run.state.error == nil)
        #expect(s.lastTypes == ["task.succeeded", "run.succeeded"])
        #expect(s.lastEvents[1].previousStatus == "running")
    }

    @Test func theRunSucceedsWhenOnlyTasksThatMayFailFailed() throws {
        var s = Scenario([task("lint", allowFailure: true), task("build")])
        try s.start("lint")
        try s.start("build")
        try s.report("lint", .failed, exitCode: 1)
        #expect(s.run.status == .running)
        try s.report("build", .succeeded)
        #expect(s.run.status == .succeeded)
        #expect(s.run.state.error == nil)
    }

    @Test func theRunsOutputRefComesFromTheTaskThatReportedOneLast() throws {
        var s = Scenario([task("a"), task("b"), task("c")])
        try s.start("a")
        try s.start("b")
        try s.start("c")
        try s.report("b", StatusReport(status: .running, outputRef: "s3://b"))
        try s.report("a", StatusReport(status: .succeeded, outputRef: "s3://a"))
        try s.report("b", .succeeded)
        #expect(s.run.state.outputRef == nil, "set only when the run succeeds")
        try s.report("c", .succeeded)
        #expect(s.run.status == .succeeded)
        #expect(s.run.state.outputRef == "s3://a")
    }

    @Test(arguments: [TaskStatus.failed, .timedOut, .canceled])
    func aTaskThatMayNotFailEndingBadlyFailsTheRunNamingTheTaskAndCause(_ ending: TaskStatus) throws {
        var s = Scenario([task("build"), task("docs")])
        try s.start("build")
        switch ending {
        case .timedOut: s.taskTimedOut("build")
        default: try s.report("build", ending, exitCode: 3)
        }
        #expect(s.run.status == .failed)
        #expect(s.run.state.finishedAt == s.now)
        let error = try #require(s.run.state.error)
        #expect(error.code == "task_failed")
        #expect(error.taskID == taskID("build"))
        #expect(error.message.contains("build"))
        #expect(error.cause == s["build"].state.error)
        #expect(error.cause != nil)
        #expect(error.retryable == error.cause?.retryable)
        let runEvent = try #require(s.lastEvents.last)
        #expect(runEvent.type == "run.failed")
        #expect(runEvent.error == error)
    }

    @Test func theRunsErrorIsRetryableWhenItsCauseIs() throws {
        var s = Scenario([task("build")])
        try s.start("build")
        s.leaseExpired("build")
        #expect(s.run.status == .failed)
        #expect(s.run.state.error?.retryable == true)
        #expect(s.run.state.error?.cause?.code == "heartbeat_lost")
    }

    @Test func onFailureWaitingTasksAreSkippedAndClaimedTasksAreToldToStop() throws {
        var s = Scenario([
            task("a"), task("pending", needs: ["other"]), task("queued"), task("dispatched"), task("running"),
            task("done"), task("other"),
        ])
        try s.claim("dispatched")
        try s.start("running")
        try s.start("done")
        try s.report("done", .succeeded)
        try s.start("a")
        try s.start("other")
        try s.report("a", .failed, exitCode: 1)
        #expect(s.run.status == .failed)
        #expect(s.status("pending") == .skipped)
        #expect(s.status("queued") == .skipped)
        #expect(s.status("dispatched") == .canceling)
        #expect(s.status("running") == .canceling)
        #expect(s.status("other") == .canceling)
        #expect(s.status("done") == .succeeded)
        #expect(s["dispatched"].state.runner == "host-a", "the runner keeps the task until it confirms the stop")
    }

    @Test func withinOneChangeTaskEventsComeBeforeTheRunEventTheyCause() throws {
        var s = Scenario([task("a"), task("b", needs: ["a"]), task("c"), task("d")])
        try s.start("a")
        try s.start("c")
        try s.report("a", .failed)
        let types = s.lastTypes
        #expect(types.first == "task.failed")
        #expect(types.last == "run.failed")
        #expect(types.filter { $0.hasPrefix("run.") } == ["run.failed"])
        #expect(Set(types.dropFirst().dropLast()) == ["task.skipped", "task.canceling"])
        #expect(types.count == 5)  // a failed, b skipped, c canceling, d skipped, run failed
    }

    @Test func aFailedRunStaysFailedWhenItsRemainingTasksEnd() throws {
        var s = Scenario([task("a"), task("b")])
        try s.start("a")
        try s.start("b")
        try s.report("a", .failed)
        let error = s.run.state.error
        try s.report("b", .succeeded)
        #expect(s.status("b") == .succeeded)
        #expect(s.run.status == .failed)
        #expect(s.run.state.error == error)
        #expect(s.lastTypes == ["task.succeeded"])
    }

    @Test func theRunStaysQueuedUntilATaskIsClaimed() throws {
        var s = Scenario([task("a"), task("b", needs: ["a"])])
        s.apply { _ in }
        #expect(s.run.status == .queued)
        #expect(s.version == 1)
        try s.claim("a")
        #expect(s.run.status == .running)
    }
}
