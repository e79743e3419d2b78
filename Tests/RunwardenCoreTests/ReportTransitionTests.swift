import Testing
import RunwardenCore

@Suite("Status reports move tasks forward only")
struct ReportTransitionTests {
    @Test func aRunningReportStartsADispatchedTaskAtTheReportsTimestamp() throws {
        var s = Scenario([task("build"), task("test")])
        try s.claim("build")
        let claimedAt = s.now
        let reported = claimedAt.adding(milliseconds: 250)
        let applied = try s.report("build", .at(.running, reported))
        #expect(applied)
        #expect(s.status("build") == .running)
        #expect(s["build"].state.startedAt == reported)
        #expect(s.lastTypes == ["task.running"])
        #expect(s.lastEvents.first?.timestamp == reported)
        #expect(s.lastEvents.first?.previousStatus == "dispatched")
        #expect(s.lastEvents.first?.attempt == 1)
        #expect(s.version == 3)
    }

    @Test func aSucceededReportFinishesTheTaskWithItsExitCode() throws {
        var s = Scenario([task("build"), task("test")])
        try s.start("build")
        try s.report("build", .succeeded, exitCode: 0)
        let build = s["build"]
        #expect(build.status == .succeeded)
        #expect(build.state.exitCode == 0)
        #expect(build.state.finishedAt == s.now)
        #expect(build.state.error == nil)
        #expect(s.lastTypes == ["task.succeeded"])
        #expect(s.run.status == .running)
    }

    @Test func aFailedReportWithoutAnErrorGetsAnExitCodeError() throws {
        var s = Scenario([task("build")])
        try s.start("build")
        try s.report("build", .failed, exitCode: 2)
        let error = try #require(s["build"].state.error)
        #expect(error.code == "exit_code")
        #expect(error.message.contains("2"))
        #expect(error.retryable == false)
        #expect(s["build"].state.exitCode == 2)
    }

    @Test func aReportedLaunchFailureKeepsItsRetryableError() throws {
        var s = Scenario([task("build")])
        try s.claim("build")
        try s.report("build", StatusReport(status: .failed, error: TaskError(code: "launch_failed", message: "no such file")))
        let error = try #require(s["build"].state.error)
        #expect(error.code == "launch_failed")
        #expect(error.retryable)
        #expect(s.run.state.error?.retryable == true)
    }

    // MARK: Out of order

    @Test func aSucceededReportBeforeRunningFillsStartedAtFromTheReportTimestamp() throws {
        var s = Scenario([task("build"), task("test")])
        try s.claim("build")
        let reported = s.now.adding(milliseconds: 400)
        let applied = try s.report("build", .at(.succeeded, reported))
        #expect(applied)
        let build = s["build"]
        #expect(build.status == .succeeded)
        #expect(build.state.startedAt == reported)
        #expect(build.state.finishedAt == reported)
        #expect(s.lastTypes == ["task.succeeded"])
        #expect(s.lastEvents.first?.previousStatus == "dispatched")
        #expect(s.lastEvents.first?.timestamp == reported)
        #expect(s.version == 3)
    }

    @Test func aRunningReportArrivingAfterTheTaskFinishedIsNotApplied() throws {
        var s = Scenario([task("build"), task("test")])
        try s.claim("build")
        try s.report("build", .succeeded)
        let before = s.run
        let applied = try s.report("build", .running)
        #expect(!applied)
        #expect(s.run == before)
        #expect(s.lastEvents.isEmpty)
    }

    /// Offsets in milliseconds from the claim; the scenario's clock is one second after the claim.
    @Test(arguments: [
        (offset: Int64(-1), sane: false),  // before the claim
        (offset: -60_000, sane: false),
        (offset: 0, sane: true),  // exactly at the claim
        (offset: 500, sane: true),
        (offset: 1_000, sane: true),  // exactly now
        (offset: 1_001, sane: false),  // in the future
        (offset: 3_600_000, sane: false),
    ])
    func aReportTimestampIsUsedOnlyWhenItIsSane(offset: Int64, sane: Bool) throws {
        var s = Scenario([task("build"), task("test")])
        try s.claim("build")
        let reported = s.now.adding(milliseconds: offset)
        try s.report("build", .at(.succeeded, reported))
        let expected = sane ? reported : s.now
        #expect(s["build"].state.startedAt == expected)
        #expect(s["build"].state.finishedAt == expected)
        #expect(s.lastEvents.first?.timestamp == expected)
    }

    @Test func aReportWithoutATimestampUsesTheServerClock() throws {
        var s = Scenario([task("build")])
        try s.claim("build")
        try s.report("build", .running)
        #expect(s["build"].state.startedAt == s.now)
    }

    // MARK: Forward only, terminal absorbing

    @Test func aDuplicateRunningReportIsAppliedOnce() throws {
        var s = Scenario([task("build")])
        try s.claim("build")
        #expect(try s.report("build", .running))
        let before = s.run
        #expect(try s.report("build", .running) == false)
        #expect(s.run == before)
        #expect(s.lastEvents.isEmpty)
        #expect(s.allEvents.filter { $0.type == "task.running" }.count == 1)
    }

    @Test(arguments: [TaskStatus.succeeded, .failed, .canceled, .timedOut])
    func aTerminalTaskAbsorbsEveryLaterReport(_ terminal: TaskStatus) throws {
        // allow_failure keeps the run running, so only the task's own absorption is under test.
        var s = Scenario([task("build", allowFailure: true), task("other")])
        try s.start("build")
        try s.report("build", StatusReport(status: terminal, exitCode: 1, outputRef: "s3://first"))
        #expect(s.status("build") == terminal)
        for late in TaskStatus.reportable {
            let before = s.run
            let applied = try s.report(
                "build", StatusReport(status: late, exitCode: 7, outputRef: "s3://late", progress: .init(done: 9, total: 9)))
            #expect(!applied, "a late \(late.rawValue) report must not apply")
            #expect(s.run == before)
            #expect(s.lastEvents.isEmpty)
        }
        #expect(s["build"].state.outputRef == "s3://first")
    }

    @Test func aLateReportFromAnotherRunnerForATerminalTaskIsNotAppliedRatherThanRejected() throws {
        var s = Scenario([task("build")])
        try s.start("build")
        try s.report("build", .succeeded)
        #expect(try s.report("build", .failed, runner: "host-b") == false)
        #expect(s.status("build") == .succeeded)
    }

    @Test func aRunningReportDoesNotMoveACancelingTaskBack() throws {
        var s = Scenario([task("a"), task("b")])
        try s.start("a")
        try s.start("b")
        try s.report("a", .failed)
        #expect(s.status("b") == .canceling)
        try s.report("b", .running)
        #expect(s.status("b") == .canceling)
        #expect(s.lastEvents.isEmpty)
    }

    @Test func aTerminalReportEndsACancelingTaskWithTheReportedStatus() throws {
        var s = Scenario([task("a"), task("b")])
        try s.start("a")
        try s.start("b")
        try s.report("a", .failed)
        try s.report("b", .canceled)
        #expect(s.status("b") == .canceled)
        #expect(s.lastTypes == ["task.canceled"])
        #expect(s.run.status == .failed)
    }

    // MARK: Attempts and ownership

    @Test func aReportForAnOlderAttemptIsIgnored() throws {
        var s = Scenario([task("build", retries: 1)])
        try s.start("build")
        s.leaseExpired("build")
        try s.claim("build", runner: "host-b")
        let before = s.run
        let applied = try s.report("build", .at(.succeeded, nil, attempt: 1), runner: "host-a")
        #expect(!applied)
        #expect(s.run == before)
        #expect(s.lastEvents.isEmpty)
    }

    @Test func aReportForTheCurrentAttemptAfterARetryIsApplied() throws {
        var s = Scenario([task("build", retries: 1)])
        try s.start("build")
        s.leaseExpired("build")
        try s.claim("build", runner: "host-b")
        #expect(try s.report("build", .at(.running, nil, attempt: 2), runner: "host-b"))
        #expect(s.status("build") == .running)
        #expect(s.lastEvents.first?.attempt == 2)
    }

    enum NotClaimed: String, CaseIterable, CustomTestStringConvertible {
        case futureAttempt, neverClaimed, pendingTask, otherRunner, retriedButNotReclaimed, unknownTask
        var testDescription: String { rawValue }
    }

    @Test(arguments: NotClaimed.allCases)
    func aReportForATaskThisRunnerDoesNotHoldIsTaskNotClaimed(_ situation: NotClaimed) throws {
        var s = Scenario([task("build", retries: 1), task("test", needs: ["build"])])
        var name = "build"
        var report = StatusReport(status: .running)
        var runner: String? = "host-a"
        switch situation {
        case .futureAttempt:
            try s.claim("build")
            report.attempt = 2
        case .neverClaimed: break
        case .pendingTask: name = "test"
        case .otherRunner:
            try s.claim("build", runner: "host-a")
            runner = "host-b"
        case .retriedButNotReclaimed:
            try s.start("build")
            s.leaseExpired("build")
            report.attempt = 2
        case .unknownTask: name = "ghost"
        }
        let before = s.run
        let error = #expect(throws: TransitionError.self) { try s.report(name, report, runner: runner) }
        guard case .taskNotClaimed(let message) = error else {
            Issue.record("expected taskNotClaimed, got \(String(describing: error))")
            return
        }
        #expect(!message.isEmpty)
        #expect(s.run == before)
    }

    @Test func aReportWithoutARunnerNameIsAcceptedFromTheHolder() throws {
        var s = Scenario([task("build")])
        try s.claim("build", runner: "host-a")
        #expect(try s.report("build", .running, runner: nil))
    }

    // MARK: Progress and output without a status change

    @Test func newProgressOnTheSameStatusIsAppliedAndStepsTheVersionWithoutAnEvent() throws {
        var s = Scenario([task("build")])
        try s.start("build")
        let version = s.version
        let applied = try s.report("build", StatusReport(status: .running, progress: .init(done: 3, total: 10)))
        #expect(applied)
        #expect(s["build"].state.progress == TaskProgress(done: 3, total: 10))
        #expect(s.version == version + 1)
        #expect(s.run.state.updatedAt == s.now)
        #expect(s.lastEvents.isEmpty)

        let repeated = try s.report("build", StatusReport(status: .running, progress: .init(done: 3, total: 10)))
        #expect(!repeated)
        #expect(s.version == version + 1)
    }

    @Test func aNewOutputRefOnTheSameStatusIsAppliedWithoutAnEvent() throws {
        var s = Scenario([task("build")])
        try s.start("build")
        let version = s.version
        #expect(try s.report("build", StatusReport(status: .running, outputRef: "s3://bucket/partial")))
        #expect(s["build"].state.outputRef == "s3://bucket/partial")
        #expect(s["build"].state.outputRefAt == s.now)
        #expect(s.version == version + 1)
        #expect(s.lastEvents.isEmpty)
    }

    // MARK: Versions and events

    @Test func everyCommittedChangeStepsTheVersionExactlyOnce() throws {
        var s = Scenario([task("a"), task("b", needs: ["a"]), task("c", needs: ["b"]), task("d")])
        var expected = 1
        try s.claim("a"); expected += 1
        #expect(s.version == expected)
        try s.report("a", .running); expected += 1
        #expect(s.version == expected)
        try s.report("a", .succeeded); expected += 1  // a succeeded and b queued: two events, one step
        #expect(s.lastEvents.count == 2)
        #expect(s.version == expected)
        try s.start("d"); expected += 2
        try s.report("d", .failed); expected += 1  // d failed, b skipped, c skipped, run failed
        #expect(s.lastEvents.count >= 3)
        #expect(s.version == expected)
    }

    @Test func everyEventOfAChangeNamesARealStatusChange() throws {
        var s = Scenario([task("a"), task("b", needs: ["a"]), task("c")])
        try s.start("a")
        try s.start("c")
        try s.report("a", .failed)
        for event in s.allEvents where event.type != "run.created" {
            #expect(event.status != event.previousStatus, "\(event.type) did not change a status")
            #expect(event.runID == "run_1")
            #expect(event.id.hasPrefix("evt_"))
        }
        #expect(Set(s.allEvents.map(\.id)).count == s.allEvents.count)
    }
}
