import Testing
import RunwardenCore

@Suite("needs release and skip tasks")
struct NeedsReleaseTests {
    @Test func aPendingTaskIsQueuedWhenItsOnlyNeedSucceeds() throws {
        var s = Scenario([task("build"), task("test", needs: ["build"])])
        try s.start("build")
        try s.report("build", .succeeded)
        #expect(s.status("test") == .queued)
        #expect(s["test"].state.queuedAt == s.now)
        #expect(s.lastTypes == ["task.succeeded", "task.queued"])
        #expect(s.lastEvents[1].taskID == taskID("test"))
        #expect(s.lastEvents[1].previousStatus == "pending")
        #expect(s.run.status == .running)
    }

    @Test func aTaskWithSeveralNeedsWaitsForAllOfThem() throws {
        var s = Scenario([task("a"), task("b"), task("join", needs: ["a", "b"])])
        try s.start("a")
        try s.start("b")
        try s.report("a", .succeeded)
        #expect(s.status("join") == .pending)
        try s.report("b", .succeeded)
        #expect(s.status("join") == .queued)
    }

    @Test func aChainIsReleasedOneLinkAtATime() throws {
        var s = Scenario([task("a"), task("b", needs: ["a"]), task("c", needs: ["b"])])
        try s.start("a")
        try s.report("a", .succeeded)
        #expect(s.status("b") == .queued)
        #expect(s.status("c") == .pending)
        try s.start("b")
        try s.report("b", .succeeded)
        #expect(s.status("c") == .queued)
    }

    @Test(arguments: [TaskStatus.failed, .timedOut])
    func aNeedThatMayFailIsMetWhenItFails(_ ending: TaskStatus) throws {
        var s = Scenario([task("lint", allowFailure: true), task("ship", needs: ["lint"])])
        try s.start("lint")
        if ending == .timedOut { s.taskTimedOut("lint") } else { try s.report("lint", .failed, exitCode: 1) }
        #expect(s.status("lint") == ending)
        #expect(s.status("ship") == .queued)
        #expect(s.run.status == .running)
        #expect(s.run.state.error == nil)
    }

    @Test(arguments: [TaskStatus.failed, .timedOut])
    func aNeedThatMayNotFailSkipsItsDependentsWhenItFails(_ ending: TaskStatus) throws {
        var s = Scenario([task("build"), task("test", needs: ["build"])])
        try s.start("build")
        if ending == .timedOut { s.taskTimedOut("build") } else { try s.report("build", .failed, exitCode: 1) }
        #expect(s.status("test") == .skipped)
        #expect(s["test"].state.finishedAt == s.now)
        #expect(s.run.status == .failed)
    }

    @Test func aCanceledNeedIsNeverMetEvenWhenItMayFailSoDependentsAreSkippedTransitively() throws {
        var s = Scenario([
            task("a", allowFailure: true), task("b", needs: ["a"]), task("c", needs: ["b"]), task("other"),
        ])
        try s.start("a")
        try s.report("a", .canceled)
        #expect(s.status("b") == .skipped)
        #expect(s.status("c") == .skipped)
        #expect(s["b"].state.error?.code == "needs_not_met")
        #expect(s["b"].state.error?.message.contains("\"a\"") == true)
        #expect(s["c"].state.error?.message.contains("\"b\"") == true)
        #expect(s.status("other") == .queued)
        #expect(s.lastTypes == ["task.canceled", "task.skipped", "task.skipped"])
    }

    @Test func aSkippedTaskNeverHeldALockOrARunner() throws {
        var s = Scenario([task("build"), task("deploy", needs: ["build"], workspace: "prod")])
        try s.start("build")
        try s.report("build", .failed)
        #expect(s.status("deploy") == .skipped)
        #expect(s["deploy"].state.runner == nil)
        #expect(!s["deploy"].state.holdsLock)
        #expect(s["deploy"].state.startedAt == nil)
    }
}
