import Testing
import RunwardenCore

/// SPEC §10 "Approval": a task that waits for a person, never for a runner.
@Suite("Approval tasks")
struct ApprovalTests {
    static func gate(_ name: String = "gate", needs: [String] = [], timeout: Int? = nil) -> TaskSpec {
        TaskSpec(name: name, command: .argv([]), needs: needs, approval: ApprovalSpec(timeoutSeconds: timeout))
    }

    static func decision(_ approved: Bool, comment: String? = "ok", at: Timestamp = t0) -> ApprovalDecision {
        ApprovalDecision(approved: approved, by: "client", comment: comment, at: at)
    }

    @Test func anApprovalTaskWithoutNeedsWaitsQueuedFromTheStartAndIsAnnounced() {
        let scenario = Scenario([Self.gate(), task("deploy", needs: ["gate"])])
        let gate = scenario.run.tasks[0]
        var ids = 0
        let requests = scenario.run.approvalRequests {
            ids += 1
            return "evt_\(ids)"
        }

        #expect(gate.status == .queued)
        #expect(Snapshot.blockedBy(gate, in: scenario.run, lockHolders: [:]) == .awaitingApproval)
        #expect(requests.map(\.type) == ["task.queued"])
        #expect(requests.first?.taskID == gate.id)
    }

    @Test func anApprovalTaskIsQueuedWithAnEventOnceItsNeedsAreMet() throws {
        var scenario = Scenario([task("build"), Self.gate(needs: ["build"])])
        #expect(scenario.run.approvalRequests { "evt_x" }.isEmpty)
        try scenario.start("build")
        try scenario.report("build", .succeeded, exitCode: 0)

        #expect(scenario.run.tasks[1].status == .queued)
        #expect(scenario.lastEvents.contains { $0.type == "task.queued" && $0.taskID == taskID("gate") })
    }

    @Test func approvingSucceedsTheTaskKeepsTheDecisionAndReleasesWhatNeedsIt() throws {
        var scenario = Scenario([Self.gate(), task("deploy", needs: ["gate"])])
        let decision = Self.decision(true, at: t0.adding(seconds: 1))
        try scenario.apply { (change: inout RunChange) throws(TransitionError) in
            try change.decideApproval(taskID: taskID("gate"), decision)
        }
        let gate = scenario.run.tasks[0]
        let event = scenario.lastEvents.first { $0.taskID == gate.id }

        #expect(gate.status == .succeeded)
        #expect(gate.state.approval == decision)
        #expect(event?.type == "task.succeeded")
        #expect(event?.approval == decision)
        #expect(ApprovalWire(gate.state.approval).approvedBy == "client")
        #expect(scenario.run.tasks[1].status == .queued)
    }

    @Test func rejectingFailsTheTaskWithRejectedAndFailsTheRun() throws {
        var scenario = Scenario([Self.gate(), task("deploy", needs: ["gate"])])
        try scenario.apply { (change: inout RunChange) throws(TransitionError) in
            try change.decideApproval(taskID: taskID("gate"), Self.decision(false, comment: "not today"))
        }
        let gate = scenario.run.tasks[0]

        #expect(gate.status == .failed)
        #expect(gate.state.error?.code == "rejected")
        #expect(gate.state.error?.message.contains("not today") == true)
        #expect(ApprovalWire(gate.state.approval).rejectedBy == "client")
        #expect(scenario.run.status == .failed)
        #expect(scenario.run.tasks[1].status == .skipped)
    }

    @Test func onlyAnApprovalTaskThatWaitsCanBeDecided() throws {
        var scenario = Scenario([task("build"), Self.gate(needs: ["build"]), Self.gate("later")])
        for (name, why) in [("build", "not an approval task"), ("gate", "pending")] {
            #expect(throws: TransitionError.self, "\(why)") {
                try scenario.apply { (change: inout RunChange) throws(TransitionError) in
                    try change.decideApproval(taskID: taskID(name), Self.decision(true))
                }
            }
        }
        try scenario.apply { (change: inout RunChange) throws(TransitionError) in
            try change.decideApproval(taskID: taskID("later"), Self.decision(true))
        }
        let second = #expect(throws: TransitionError.self) {
            try scenario.apply { (change: inout RunChange) throws(TransitionError) in
                try change.decideApproval(taskID: taskID("later"), Self.decision(false))
            }
        }
        #expect(second?.apiError.code == .taskNotAwaitingApproval)
        #expect(scenario.run.tasks[2].status == .succeeded)
    }

    @Test func anApprovalTaskIsNeverClaimed() {
        var scenario = Scenario([Self.gate()])
        #expect(throws: TransitionError.notClaimable) { try scenario.claim("gate") }
    }

    @Test func anUndecidedApprovalTimesOutFromWhenItWasQueued() throws {
        var scenario = Scenario([task("build"), Self.gate(needs: ["build"], timeout: 60)])
        #expect(scenario.run.tasks[1].timeoutDeadline == nil)
        try scenario.start("build")
        try scenario.report("build", .succeeded, exitCode: 0)
        let queuedAt = try #require(scenario.run.tasks[1].state.queuedAt)
        #expect(scenario.run.tasks[1].timeoutDeadline == queuedAt.adding(seconds: 60))
        scenario.taskTimedOut("gate")

        #expect(scenario.run.tasks[1].status == .timedOut)
        #expect(scenario.run.tasks[1].state.error?.code == "timeout")
        #expect(scenario.run.status == .failed)
    }

    @Test func anApprovalTaskHasNoCommandAndItsTimeoutIsChecked() {
        let ok = RunDefinition.parse(json(#"{"workflow":"w","tasks":[{"name":"gate","approval":{"timeout_s":30}}]}"#))
        #expect((try? ok.get())?.tasks.first?.approval == ApprovalSpec(timeoutSeconds: 30))
        for (body, field) in [
            (#"{"workflow":"w","tasks":[{"name":"gate","approval":{},"command":"make"}]}"#, "tasks[0].command"),
            (#"{"workflow":"w","tasks":[{"name":"gate","approval":{"timeout_s":0}}]}"#, "tasks[0].approval.timeout_s"),
            (#"{"workflow":"w","tasks":[{"name":"gate","approval":{"wait":1}}]}"#, "tasks[0].approval.wait"),
            (#"{"workflow":"w","tasks":[{"name":"gate","approval":true}]}"#, "tasks[0].approval"),
            (#"{"workflow":"w","tasks":[{"name":"gate"}]}"#, "tasks[0].command"),
        ] {
            guard case .failure(let failure) = RunDefinition.parse(json(body)) else {
                Issue.record("accepted: \(body)")
                continue
            }
            #expect(failure.errors.map(\.field) == [field], "\(body)")
        }
    }
}
