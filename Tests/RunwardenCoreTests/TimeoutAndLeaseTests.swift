import Testing
import RunwardenCore

@Suite("Timeouts and lease expiry")
struct TimeoutAndLeaseTests {
    // MARK: Run timeout

    @Test func aRunTimeoutEndsTheRunTimedOutAndStopsItsUnfinishedTasks() throws {
        var s = Scenario(
            [task("done"), task("running"), task("queued"), task("pending", needs: ["running"])], timeout: 600)
        try s.start("done")
        try s.report("done", .succeeded)
        try s.start("running")
        s.runTimedOut()
        #expect(s.run.status == .timedOut)
        #expect(s.run.state.finishedAt == s.now)
        let error = try #require(s.run.state.error)
        #expect(error.code == "run_timeout")
        #expect(error.retryable == false)
        #expect(error.taskID == nil)
        #expect(error.message.contains("600"))
        #expect(s.status("done") == .succeeded)
        #expect(s.status("running") == .canceling)
        #expect(s.status("queued") == .canceled)
        #expect(s.status("pending") == .canceled)
        #expect(s.lastTypes.last == "run.timed_out")
        #expect(s.lastTypes.dropLast().allSatisfy { $0.hasPrefix("task.") })
        #expect(s.lastEvents.last?.error == error)
    }

    @Test func aRunTimeoutWhileCancelingChangesNothing() throws {
        var s = Scenario([task("build")], timeout: 60)
        try s.start("build")
        try s.cancel()
        let before = s.run
        s.runTimedOut()
        #expect(s.run == before)
        #expect(s.lastEvents.isEmpty)
    }

    @Test func aRunTimeoutOfAFinishedRunChangesNothing() throws {
        var s = Scenario([task("build")], timeout: 60)
        try s.start("build")
        try s.report("build", .succeeded)
        let before = s.run
        s.runTimedOut()
        #expect(s.run == before)
    }

    @Test func aTaskStillStoppingAfterARunTimeoutEndsWithoutChangingTheRun() throws {
        var s = Scenario([task("build", workspace: "repo")], timeout: 60)
        try s.start("build")
        s.runTimedOut()
        #expect(s["build"].state.holdsLock, "the lock is held until the task actually ends")
        try s.report("build", .canceled)
        #expect(s.status("build") == .canceled)
        #expect(!s["build"].state.holdsLock)
        #expect(s.run.status == .timedOut)
        #expect(s.lastTypes == ["task.canceled"])
    }

    // MARK: Task timeout

    @Test func aTaskTimeoutEndsTheTaskTimedOutWithATimeoutError() throws {
        var s = Scenario([task("build", timeout: 30), task("docs")])
        try s.start("build")
        s.taskTimedOut("build")
        #expect(s.status("build") == .timedOut)
        let error = try #require(s["build"].state.error)
        #expect(error.code == "timeout")
        #expect(error.message.contains("30"))
        #expect(s["build"].state.finishedAt == s.now)
        #expect(s.run.status == .failed)
        #expect(s.run.state.error?.cause?.code == "timeout")
        #expect(s.lastTypes.first == "task.timed_out")
    }

    @Test func aTaskTimeoutOfATaskThatMayFailLeavesTheRunRunning() throws {
        var s = Scenario([task("flaky", timeout: 30, allowFailure: true), task("docs")])
        try s.start("flaky")
        s.taskTimedOut("flaky")
        #expect(s.status("flaky") == .timedOut)
        #expect(s.run.status == .running)
        #expect(s.lastTypes == ["task.timed_out"])
    }

    @Test func aTaskTimeoutOfACancelingTaskEndsItCanceled() throws {
        var s = Scenario([task("a"), task("b", timeout: 30)])
        try s.start("a")
        try s.start("b")
        try s.report("a", .failed)
        s.taskTimedOut("b")
        #expect(s.status("b") == .canceled)
        #expect(s["b"].state.error?.code == "canceled")
    }

    @Test(arguments: [TaskStatus.queued, .pending, .succeeded])
    func aTaskTimeoutOfATaskWithoutAProcessChangesNothing(_ status: TaskStatus) throws {
        var s = Scenario([task("a"), task("b", needs: ["a"]), task("c")])
        let name = ["queued": "c", "pending": "b", "succeeded": "a"][status.rawValue]!
        if status == .succeeded {
            try s.start("a")
            try s.report("a", .succeeded)
        }
        let before = s.run
        s.taskTimedOut(name)
        #expect(s.run == before)
        #expect(s.lastEvents.isEmpty)
    }

    // MARK: Lease expiry

    @Test(arguments: [TaskStatus.dispatched, .running])
    func anExpiredLeaseWithRetriesLeftQueuesTheTaskAgainAsTheNextAttempt(_ status: TaskStatus) throws {
        var s = Scenario([task("build", workspace: "repo", retries: 2)])
        try s.claim("build")
        if status == .running {
            try s.report("build", StatusReport(status: .running, outputRef: "s3://x", progress: .init(done: 1, total: 4)))
        }
        let version = s.version
        s.leaseExpired("build")
        let build = s["build"]
        #expect(build.status == .queued)
        #expect(build.state.attempt == 2)
        #expect(build.state.runner == nil)
        #expect(build.state.claimedAt == nil)
        #expect(build.state.startedAt == nil)
        #expect(build.state.finishedAt == nil)
        #expect(build.state.exitCode == nil)
        #expect(build.state.error == nil)
        #expect(build.state.heartbeatAt == nil)
        #expect(build.state.progress == nil)
        #expect(!build.state.holdsLock)
        #expect(build.state.queuedAt == s.now)
        #expect(s.lastTypes == ["task.retrying"])
        let event = try #require(s.lastEvents.first)
        #expect(event.status == "queued")
        #expect(event.previousStatus == status.rawValue)
        #expect(event.attempt == 2)
        #expect(s.version == version + 1)
        #expect(s.run.status == .running)
    }

    @Test func aRetriedTaskCanBeClaimedAgainAndTheEarlierAttemptStaysInTheEvents() throws {
        var s = Scenario([task("build", retries: 1)])
        try s.start("build", runner: "host-a")
        s.leaseExpired("build")
        try s.start("build", runner: "host-b")
        try s.report("build", .succeeded, runner: "host-b")
        #expect(s.run.status == .succeeded)
        #expect(s["build"].state.attempt == 2)
        #expect(s["build"].state.runner == "host-b")
        let running = s.allEvents.filter { $0.type == "task.running" }
        #expect(running.map(\.attempt) == [1, 2])
    }

    @Test func anExpiredLeaseWithoutRetriesLeftFailsTheTaskWithHeartbeatLost() throws {
        var s = Scenario([task("build", retries: 1), task("docs")])
        try s.start("build")
        s.leaseExpired("build")
        try s.start("build")
        s.leaseExpired("build")
        let build = s["build"]
        #expect(build.status == .failed)
        #expect(build.state.attempt == 2)
        let error = try #require(build.state.error)
        #expect(error.code == "heartbeat_lost")
        #expect(error.retryable)
        #expect(error.message.contains("host-a"))
        #expect(s.run.status == .failed)
        #expect(s.lastTypes.first == "task.failed")
    }

    @Test func aRunnerReportingItLostItsLeaseGetsTheLeaseRuleARetryWhileRetriesRemain() throws {
        var s = Scenario([task("build", retries: 1)])
        try s.start("build")
        let lost = StatusReport(
            status: .failed, error: TaskError(.heartbeatLost, "the runner could not heartbeat"))
        #expect(try s.report("build", lost))
        #expect(s.status("build") == .queued)
        #expect(s["build"].state.attempt == 2)
        #expect(s.lastTypes == ["task.retrying"])

        try s.start("build")
        #expect(try s.report("build", lost))
        #expect(s.status("build") == .failed)
        #expect(s["build"].state.error?.code == "heartbeat_lost")
        #expect(s.run.status == .failed)
    }

    @Test func anExpiredLeaseOfACancelingTaskEndsItCanceled() throws {
        var s = Scenario([task("a"), task("b", retries: 5)])
        try s.start("a")
        try s.start("b")
        try s.report("a", .failed)
        s.leaseExpired("b")
        #expect(s.status("b") == .canceled)
        #expect(s["b"].state.attempt == 1)
        #expect(s.lastTypes == ["task.canceled"])
    }

    @Test func anExpiredLeaseOfATaskWithoutAProcessChangesNothing() throws {
        var s = Scenario([task("a"), task("b")])
        try s.start("a")
        try s.report("a", .succeeded)
        let before = s.run
        s.leaseExpired("a")
        s.leaseExpired("b")
        #expect(s.run == before)
    }
}
