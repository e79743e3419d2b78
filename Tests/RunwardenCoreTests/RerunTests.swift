import Testing
import RunwardenCore

/// SPEC §10 "Re-run": which tasks a re-run runs again, what it copies, and what it refuses.
@Suite("Re-run")
struct RerunTests {
    /// a → b → c → d, and a → e: c fails, so d is skipped.
    static func failedInTheMiddle() throws -> Scenario {
        var scenario = Scenario([task("a"), task("b", needs: ["a"]), task("c", needs: ["b"]), task("d", needs: ["c"]), task("e", needs: ["a"])])
        try scenario.start("a")
        try scenario.apply { (change: inout RunChange) throws(TransitionError) in
            _ = try change.report(taskID: taskID("a"), StatusReport(status: .succeeded, exitCode: 0, outputRef: "s3://a"), runner: "host-a")
        }
        for name in ["b", "e"] {
            try scenario.start(name)
            try scenario.report(name, .succeeded, exitCode: 0)
        }
        try scenario.start("c")
        try scenario.report("c", .failed, exitCode: 2)
        #expect(scenario.run.status == .failed)
        return scenario
    }

    static func rerun(_ run: Run, _ selection: RerunSelection) throws(RunwardenError) -> Run {
        try run.rerun(selection, id: "run_2", taskIDs: run.tasks.map { $0.id + "_2" }, eventID: "evt_2", now: t0.adding(seconds: 100)).run
    }

    @Test func rerunningFailedRunsTheFailedTaskAndItsDependentsAndCopiesTheRest() throws {
        let earlier = try Self.failedInTheMiddle().run
        let again = try Self.rerun(earlier, .failed)
        let byName = Dictionary(uniqueKeysWithValues: again.tasks.map { ($0.name, $0) })

        #expect(again.spec.rerunOf == "run_1")
        #expect(again.runAttempt == 2)
        #expect(again.status == .queued)
        #expect(byName["c"]?.status == .queued)
        #expect(byName["d"]?.status == .pending)
        #expect(byName["d"]?.state.needsLeft == 1)
        for name in ["a", "b", "e"] {
            let old = earlier.tasks[earlier.taskIndex(name: name)!]
            #expect(byName[name]?.status == .succeeded)
            #expect(byName[name]?.state.reusedFrom == old.id)
            #expect(byName[name]?.state.runner == old.state.runner)
            #expect(byName[name]?.state.startedAt == old.state.startedAt)
            #expect(byName[name]?.state.finishedAt == old.state.finishedAt)
            #expect(byName[name]?.state.exitCode == 0)
        }
        #expect(byName["a"]?.state.outputRef == "s3://a")
        #expect(byName["c"]?.state.reusedFrom == nil)
        #expect(again.state.taskCounts?[.succeeded] == 3)
        // The new run's tasks point at one another, not at the earlier run's.
        #expect(byName["c"]?.dependents == ["task_d_2"])
    }

    @Test func aRerunOfARerunCountsItsAttemptOn() throws {
        var second = try Self.rerun(try Self.failedInTheMiddle().run, .failed)
        second.state.status = .failed  // as if it failed again
        var third = try second.rerun(
            .names(["a"]), id: "run_3", taskIDs: second.tasks.map { $0.id + "_3" }, eventID: "evt_3", now: t0).run
        #expect(third.runAttempt == 1 + 2)
        #expect(third.spec.rerunOf == "run_2")
        third.recordRerun("run_4")
        #expect(third.state.reruns == ["run_4"])
    }

    @Test func namedTasksRunAgainWithEverythingDownstreamEvenInASucceededRun() throws {
        var scenario = Scenario([task("a"), task("b", needs: ["a"]), task("c", needs: ["b"]), task("e", needs: ["a"])])
        for name in ["a", "b", "c", "e"] {
            try scenario.start(name)
            try scenario.report(name, .succeeded, exitCode: 0)
        }
        #expect(scenario.run.status == .succeeded)
        let again = try Self.rerun(scenario.run, .names(["b"]))
        let statuses = again.tasks.map { "\($0.name)=\($0.status.rawValue)" }

        #expect(statuses == ["a=succeeded", "b=queued", "c=pending", "e=succeeded"])
    }

    @Test func aTaskThatDidNotSucceedIsNeverCopiedAsSucceeded() throws {
        // Only "e" is named, yet c failed and d was skipped: they run again too.
        let again = try Self.rerun(try Self.failedInTheMiddle().run, .names(["e"]))
        let rerun = again.tasks.filter { $0.state.reusedFrom == nil }.map(\.name)

        #expect(rerun == ["c", "d", "e"])
    }

    @Test func unknownTaskNamesAre422NamingEachOfThem() throws {
        let earlier = try Self.failedInTheMiddle().run
        let error = #expect(throws: RunwardenError.self) { try Self.rerun(earlier, .names(["a", "nope", "zilch"])) }

        #expect(error?.code == .validationFailed)
        #expect(error?.details.map(\.field) == ["tasks[1]", "tasks[2]"])
        #expect(error?.details.first?.message.contains("\"nope\"") == true)
    }

    @Test func anUnfinishedRunCannotBeRerun() throws {
        var scenario = Scenario([task("a")])
        try scenario.start("a")
        let error = #expect(throws: RunwardenError.self) { try Self.rerun(scenario.run, .failed) }

        #expect(error?.code == .runNotTerminal)
        #expect(error?.code.httpStatus == 409)
    }

    @Test func rerunningTheFailedTasksOfASucceededRunIs422() throws {
        var scenario = Scenario([task("a")])
        try scenario.start("a")
        try scenario.report("a", .succeeded, exitCode: 0)
        let error = #expect(throws: RunwardenError.self) { try Self.rerun(scenario.run, .failed) }

        #expect(error?.code == .validationFailed)
        #expect(error?.details.first?.field == "tasks")
    }

    @Test(arguments: [
        (#"{}"#, RerunSelection.failed),
        (#"{"tasks":"failed"}"#, .failed),
        (#"{"tasks":null}"#, .failed),
        (#"{"tasks":["b","c"]}"#, .names(["b", "c"])),
    ])
    func aSelectionIsParsed(body: String, expected: RerunSelection) throws {
        #expect(try RerunSelection.parse(json(body)).get() == expected)
    }

    @Test(arguments: [
        (#"{"tasks":"all"}"#, "tasks"),
        (#"{"tasks":[]}"#, "tasks"),
        (#"{"tasks":[1]}"#, "tasks[0]"),
        (#"{"tasks":[""]}"#, "tasks[0]"),
        (#"{"task":["b"]}"#, "task"),
        (#"["b"]"#, "body"),
    ])
    func aBadSelectionIs422(body: String, field: String) throws {
        guard case .failure(let failure) = RerunSelection.parse(json(body)) else {
            Issue.record("\(body) was accepted")
            return
        }
        #expect(failure.errors.map(\.field) == [field])
    }
}
