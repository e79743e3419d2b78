import Testing
import RunwardenCore

@Suite("Workspace lock flag")
struct WorkspaceLockTests {
    /// Every way a task that holds its workspace can end.
    enum Ending: String, CaseIterable, CustomTestStringConvertible {
        case succeededReport, failedReport, launchFailedReport, canceledReport, timedOutReport
        case outOfOrderSucceededWhileDispatched, taskTimeout, leaseLossRetried, leaseLossFailed
        case userCancelThenConfirmed, userCancelThenLeaseLoss, runTimeoutThenConfirmed, runFailureThenConfirmed
        var testDescription: String { rawValue }
    }

    @Test(arguments: Ending.allCases)
    func theLockFlagIsClearedWhenTheHoldingTaskEnds(_ ending: Ending) throws {
        var s = Scenario([task("build", workspace: "repo-a", retries: ending == .leaseLossRetried ? 1 : 0), task("other")], timeout: 60)
        try s.claim("build")
        #expect(s["build"].state.holdsLock)
        if ending != .outOfOrderSucceededWhileDispatched && ending != .launchFailedReport {
            try s.report("build", .running)
            #expect(s["build"].state.holdsLock)
        }
        switch ending {
        case .succeededReport, .outOfOrderSucceededWhileDispatched: try s.report("build", .succeeded)
        case .failedReport: try s.report("build", .failed, exitCode: 1)
        case .launchFailedReport:
            try s.report("build", StatusReport(status: .failed, error: TaskError(code: "launch_failed", message: "ENOENT")))
        case .canceledReport: try s.report("build", .canceled)
        case .timedOutReport: try s.report("build", .timedOut)
        case .taskTimeout: s.taskTimedOut("build")
        case .leaseLossRetried, .leaseLossFailed: s.leaseExpired("build")
        case .userCancelThenConfirmed:
            try s.cancel()
            #expect(s["build"].state.holdsLock, "still held while the runner stops the task")
            try s.report("build", .canceled)
        case .userCancelThenLeaseLoss:
            try s.cancel()
            s.leaseExpired("build")
        case .runTimeoutThenConfirmed:
            s.runTimedOut()
            #expect(s["build"].state.holdsLock)
            try s.report("build", .canceled)
        case .runFailureThenConfirmed:
            try s.start("other")
            try s.report("other", .failed)
            #expect(s.status("build") == .canceling)
            #expect(s["build"].state.holdsLock)
            try s.report("build", .canceled)
        }
        #expect(s.status("build").isTerminal || s.status("build") == .queued)
        #expect(!s["build"].state.holdsLock)
    }

    @Test func aManualLockReleaseClearsTheFlagWithoutAVersionStepOrEvent() throws {
        var s = Scenario([task("build", workspace: "repo-a")])
        try s.start("build")
        let version = s.version
        s.apply { $0.lockReleased(taskID: taskID("build")) }
        #expect(!s["build"].state.holdsLock)
        #expect(s.status("build") == .running)
        #expect(s.version == version)
        #expect(s.lastEvents.isEmpty)
    }
}
