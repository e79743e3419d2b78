import Testing
import RunwardenCore

@Suite("User cancel")
struct CancelTests {
    @Test func cancelingARunWithNothingClaimedCancelsItAtOnce() throws {
        var s = Scenario([task("build"), task("test", needs: ["build"])])
        try s.cancel()
        #expect(s.run.status == .canceled)
        #expect(s.status("build") == .canceled)
        #expect(s.status("test") == .canceled)
        #expect(s["build"].state.error?.code == "canceled")
        #expect(s["build"].state.finishedAt == s.now)
        #expect(s.run.state.finishedAt == s.now)
        #expect(s.lastTypes == ["task.canceled", "task.canceled", "run.canceled"])
        #expect(s.version == 2)
    }

    @Test func cancelingARunWithAnActiveTaskWaitsForItInCanceling() throws {
        var s = Scenario([task("build"), task("test", needs: ["build"]), task("lint")])
        try s.start("build")
        try s.cancel()
        #expect(s.run.status == .canceling)
        #expect(s.run.state.finishedAt == nil)
        #expect(s.status("build") == .canceling)
        #expect(s.status("test") == .canceled)
        #expect(s.status("lint") == .canceled)
        #expect(s.lastTypes.last == "run.canceling")
        #expect(s.lastTypes.dropLast().allSatisfy { $0.hasPrefix("task.") })
    }

    @Test(arguments: [TaskStatus.canceled, .succeeded, .failed, .timedOut])
    func theRunIsCanceledWhenItsLastActiveTaskEndsWhateverTheTaskReports(_ ending: TaskStatus) throws {
        var s = Scenario([task("build"), task("deploy")])
        try s.start("build")
        try s.start("deploy")
        try s.cancel()
        try s.report("build", ending, exitCode: 1)
        #expect(s.run.status == .canceling, "deploy is still active")
        #expect(s.status("build") == ending)
        try s.report("deploy", ending, exitCode: 1)
        #expect(s.run.status == .canceled)
        #expect(s.run.state.error == nil)
        #expect(s.lastTypes == ["task.\(ending.rawValue)", "run.canceled"])
    }

    @Test func theRunIsCanceledWhenTheLastActiveTasksLeaseRunsOut() throws {
        var s = Scenario([task("build", retries: 3)])
        try s.start("build")
        try s.cancel()
        s.leaseExpired("build")
        #expect(s.status("build") == .canceled)
        #expect(s["build"].state.attempt == 1, "a canceling task is not retried")
        #expect(s.run.status == .canceled)
        #expect(s.lastTypes == ["task.canceled", "run.canceled"])
    }

    @Test func aDispatchedTaskIsAlsoToldToStop() throws {
        var s = Scenario([task("build")])
        try s.claim("build")
        try s.cancel()
        #expect(s.status("build") == .canceling)
        #expect(s.run.status == .canceling)
        #expect(HeartbeatVerdict.mustStop(s["build"], runner: "host-a"))
    }

    @Test func aSecondCancelWhileCancelingIsAcceptedAndChangesNothing() throws {
        var s = Scenario([task("build")])
        try s.start("build")
        try s.cancel()
        let before = s.run
        try s.cancel()
        #expect(s.run == before)
        #expect(s.lastEvents.isEmpty)
    }

    @Test(arguments: [RunStatus.succeeded, .failed, .canceled, .timedOut])
    func cancelingATerminalRunThrowsRunTerminal(_ terminal: RunStatus) throws {
        var s = Scenario([task("build")], timeout: 60)
        switch terminal {
        case .succeeded:
            try s.start("build")
            try s.report("build", .succeeded)
        case .failed:
            try s.start("build")
            try s.report("build", .failed)
        case .canceled: try s.cancel()
        case .timedOut: s.runTimedOut()
        default: Issue.record("not terminal")
        }
        #expect(s.run.status == terminal)
        let before = s.run
        #expect(throws: TransitionError.runTerminal(terminal)) { try s.cancel() }
        #expect(s.run == before)
    }

    @Test func aFailingTaskDuringCancelingDoesNotTurnTheRunFailed() throws {
        var s = Scenario([task("a"), task("b")])
        try s.start("a")
        try s.start("b")
        try s.cancel()
        try s.report("a", .failed, exitCode: 2)
        #expect(s.run.status == .canceling)
        #expect(s.run.state.error == nil)
        #expect(s.status("b") == .canceling)
        s.taskTimedOut("b")
        #expect(s.status("b") == .canceled)
        #expect(s.run.status == .canceled)
    }
}
