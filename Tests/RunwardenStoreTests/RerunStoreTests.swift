import Foundation
import RunwardenCore
import RunwardenStore
import Testing

/// SPEC §10: a re-run is a new run, stored with its reused tasks, and linked from the earlier
/// run in the same commit — on every backend.
@Suite("Re-run storage")
struct RerunStoreTests {
    @Test("a re-run stores its reused tasks as succeeded and the earlier run lists it", arguments: Backend.all)
    func rerunIsStoredAndLinked(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        let earlier = try await create(store, [task("build"), task("test", needs: ["build"])])
        for (step, status) in [TaskStatus.succeeded, .failed].enumerated() {
            let claimed = try #require(try await store.claim(runner: "host-a", labels: [], now: at(step * 2 + 1)))
            _ = try await store.update(runID: earlier.id, now: at(step * 2 + 2)) { change in
                try change.report(taskID: claimed.value.id, StatusReport(status: status, exitCode: status == .failed ? 1 : 0), runner: nil)
            }
        }
        let finished = try #require(try await store.run(id: earlier.id)).run
        #expect(finished.status == .failed)

        let again = try finished.rerun(
            .failed, id: Identifier.make(.run, at: at(10)), taskIDs: finished.tasks.map { _ in Identifier.make(.task, at: at(10)) },
            eventID: Identifier.make(.evt, at: at(10)), now: at(10))
        guard case .created = try await store.createRun(again.run, event: again.event, idempotency: nil) else {
            throw StoreTestError.unexpected("the re-run was not created")
        }

        let reopened = try await reopen()
        let stored = try #require(try await reopened.run(id: again.run.id)).run
        #expect(stored.spec.rerunOf == earlier.id)
        #expect(stored.runAttempt == 2)
        #expect(stored.tasks.map(\.status) == [.succeeded, .queued])
        #expect(stored.tasks[0].state.reusedFrom == finished.tasks[0].id)
        #expect(stored.tasks[0].state.runner == "host-a")
        let linked = try #require(try await reopened.run(id: earlier.id)).run
        #expect(linked.state.reruns == [again.run.id])
        #expect(linked.state.version == finished.state.version + 1)
        #expect(linked.status == .failed)
        // The reused task is never handed out; the failed one is.
        let claimed = try #require(try await reopened.claim(runner: "host-b", labels: [], claimID: nil, now: at(11)))
        #expect(claimed.value.id == stored.tasks[1].id)
        #expect(try await reopened.claim(runner: "host-b", labels: [], claimID: nil, now: at(12))?.value.id == nil)
    }
}
