import Testing
import RunwardenCore

@Suite("Run creation and claims")
struct CreationAndClaimTests {
    @Test func aNewRunIsQueuedAtVersionOneWithOneRunCreatedEvent() {
        let s = Scenario([task("build"), task("test", needs: ["build"])])
        #expect(s.run.status == .queued)
        #expect(s.version == 1)
        #expect(s.run.state.createdAt == t0)
        #expect(s.run.state.updatedAt == t0)
        #expect(s.run.state.startedAt == nil)
        #expect(s.allEvents.count == 1)
        #expect(s.allEvents.first?.type == "run.created")
        #expect(s.allEvents.first?.status == "queued")
        #expect(s.allEvents.first?.previousStatus == nil)
        #expect(s.allEvents.first?.taskID == nil)
    }

    @Test func tasksWithoutNeedsStartQueuedAndTasksWithNeedsStartPending() {
        let s = Scenario([task("build"), task("lint"), task("test", needs: ["build"])])
        #expect(s.status("build") == .queued)
        #expect(s.status("lint") == .queued)
        #expect(s.status("test") == .pending)
        #expect(s["build"].state.queuedAt == t0)
        #expect(s["test"].state.queuedAt == nil)
        #expect(s.run.tasks.allSatisfy { $0.state.attempt == 1 && $0.state.runner == nil && !$0.state.holdsLock })
    }

    @Test func claimingAQueuedTaskDispatchesItToTheRunnerAndStartsTheRun() throws {
        var s = Scenario([task("build"), task("test")])
        try s.claim("build", runner: "host-a")
        let build = s["build"]
        #expect(build.status == .dispatched)
        #expect(build.state.runner == "host-a")
        #expect(build.state.claimedAt == s.now)
        #expect(build.state.heartbeatAt == s.now)
        #expect(build.state.startedAt == nil)
        #expect(s.run.status == .running)
        #expect(s.run.state.startedAt == s.now)
        #expect(s.version == 2)
        #expect(s.run.state.updatedAt == s.now)
        #expect(s.lastTypes == ["task.dispatched", "run.running"])
        #expect(s.lastEvents[0].previousStatus == "queued")
        #expect(s.lastEvents[1].previousStatus == "queued")
    }

    @Test func aSecondClaimInARunningRunStepsTheVersionWithoutARunEvent() throws {
        var s = Scenario([task("build"), task("test")])
        try s.claim("build")
        let startedAt = s.run.state.startedAt
        try s.claim("test", runner: "host-b")
        #expect(s.lastTypes == ["task.dispatched"])
        #expect(s.version == 3)
        #expect(s.run.state.startedAt == startedAt)
        #expect(s["test"].state.runner == "host-b")
    }

    enum Unclaimable: String, CaseIterable, CustomTestStringConvertible {
        case pendingTask, dispatchedTask, runningTask, succeededTask, unknownTask, taskOfCancelingRun, taskOfTerminalRun
        var testDescription: String { rawValue }
    }

    @Test(arguments: Unclaimable.allCases)
    func claimingATaskThatIsNotQueuedThrowsNotClaimableAndChangesNothing(_ situation: Unclaimable) throws {
        var s = Scenario([task("a"), task("b", needs: ["a"]), task("c")])
        var target = "a"
        switch situation {
        case .pendingTask: target = "b"
        case .dispatchedTask: try s.claim("a")
        case .runningTask: try s.start("a")
        case .succeededTask:
            try s.start("a")
            try s.report("a", .succeeded)
        case .unknownTask: target = "nope"
        case .taskOfCancelingRun:
            try s.start("a")
            try s.cancel()
            target = "c"
        case .taskOfTerminalRun:
            s.runTimedOut()
            target = "c"
        }
        let before = s.run
        #expect(throws: TransitionError.notClaimable) { try s.claim(target, runner: "host-z") }
        #expect(s.run == before)
    }

    @Test func aClaimTakesTheWorkspaceLockOnlyForATaskWithAWorkspace() throws {
        var s = Scenario([task("build", workspace: "repo-a"), task("docs")])
        try s.claim("build")
        try s.claim("docs")
        #expect(s["build"].state.holdsLock)
        #expect(!s["docs"].state.holdsLock)
    }

    @Test func aHeartbeatRefreshesOnlyTheRunnersActiveTasksAndStepsNothing() throws {
        var s = Scenario([task("a"), task("b"), task("c")])
        try s.claim("a", runner: "host-a")
        try s.claim("b", runner: "host-b")
        let claimedAt = s.now
        let version = s.version
        s.apply(advance: 10) { $0.heartbeat(taskIDs: [taskID("a"), taskID("b"), taskID("c")], runner: "host-a") }
        #expect(s["a"].state.heartbeatAt == s.now)
        #expect(s["b"].state.heartbeatAt == claimedAt)
        #expect(s["c"].state.heartbeatAt == nil)
        #expect(s.version == version)
        #expect(s.lastEvents.isEmpty)
    }
}
