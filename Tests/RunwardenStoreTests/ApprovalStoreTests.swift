import Foundation
import RunwardenCore
import RunwardenStore
import Testing

/// SPEC §10 "Approval" in storage: an approval task is never handed to a runner, its wait runs
/// out through the same deadline index as task timeouts, and its decision is kept in its event.
@Suite("Approval storage")
struct ApprovalStoreTests {
    static func gate(timeout: Int) -> TaskSpec {
        TaskSpec(name: "gate", command: .argv([]), approval: ApprovalSpec(timeoutSeconds: timeout))
    }

    @Test("an approval task is never claimed, times out on its deadline, and keeps its decision in its event", arguments: Backend.all)
    func approvalIsNeverClaimed(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let waiting = try await create(store, [Self.gate(timeout: 60)])
        let decided = try await create(store, [Self.gate(timeout: 60), task("after", needs: ["gate"])])

        #expect(try await store.claim(runner: "host-a", labels: [], claimID: nil, now: at(1))?.value.id == nil)
        #expect(try await store.claim(runner: "host-a", labels: ["approval"], claimID: nil, now: at(1))?.value.id == nil)
        let due = try await store.dueWork(leaseCutoff: at(0), now: at(61), limit: 10)
        #expect(due.count == 2)
        #expect(due.contains(.taskTimedOut(runID: waiting.id, taskID: waiting.tasks[0].id)))
        #expect(due.contains(.taskTimedOut(runID: decided.id, taskID: decided.tasks[0].id)))
        #expect(try await store.dueWork(leaseCutoff: at(0), now: at(59), limit: 10).isEmpty)

        let decision = ApprovalDecision(approved: true, by: "client", comment: "ship it", at: at(2))
        let committed = try #require(
            try await store.update(runOfTask: decided.tasks[0].id, dependents: true, now: at(2)) { change in
                try change.decideApproval(taskID: decided.tasks[0].id, decision)
            })
        #expect(committed.events.first?.draft.approval == decision)
        let events = try await store.events(runID: decided.id, after: 0, limit: 10)
        #expect(events.first { $0.draft.type == "task.succeeded" }?.draft.approval == decision)
        #expect(try await store.run(id: decided.id)?.run.tasks[0].state.approval == decision)
        // Decided, it is off the deadline index; what needed it is claimable.
        #expect(try await store.dueWork(leaseCutoff: at(0), now: at(61), limit: 10) == [.taskTimedOut(runID: waiting.id, taskID: waiting.tasks[0].id)])
        #expect(try await store.claim(runner: "host-a", labels: [], claimID: nil, now: at(3))?.value.name == "after")
    }
}
