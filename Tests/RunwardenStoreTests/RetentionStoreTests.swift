import Foundation
import RunwardenCore
import RunwardenStore
import Testing

/// Retention (SPEC §7) on every backend: a finished run's events, deliveries and idempotency
/// keys go, its snapshot stays, and nothing else is touched.
@Suite("Retention in the stores")
struct RetentionStoreTests {
    @Test("compaction removes a finished run's events, deliveries and idempotency key and keeps its snapshot", arguments: Backend.all)
    func compactsFinishedRuns(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        try await store.createWebhook(webhook("wh_all", events: ["*"]))
        let key = IdempotencyKey(scope: "open", key: "k1", bodyDigest: "d1")
        let (old, event) = makeRun("old", tasks: [task("a")], now: at(0))
        guard case .created = try await store.createRun(old, event: event, idempotency: key) else { throw StoreTestError.unexpected("not created") }
        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        _ = try await store.update(runOfTask: claimed.value.id, dependents: true, now: at(2)) { change in
            try change.report(taskID: claimed.value.id, StatusReport(status: .succeeded), runner: "r")
        }
        let oldEvents = try await store.events(runID: old.id, after: 0, limit: 100)
        let going = try await create(store, [task("b", labels: ["nobody"])], workflow: "going", now: at(3))
        let before = try #require(try await store.run(id: old.id))
        #expect(before.run.status == .succeeded)

        #expect(try await store.compactRuns(finishedBefore: at(2), limit: 10, now: at(50)) == 0, "finished at 2: not before 2")
        #expect(try await store.compactRuns(finishedBefore: at(3), limit: 10, now: at(50)) == 1)
        #expect(try await store.compactRuns(finishedBefore: at(100), limit: 10, now: at(51)) == 0, "once only; the other run is not finished")

        let after = try #require(try await store.run(id: old.id))
        #expect(after.run.tasks == before.run.tasks, "tasks kept")
        #expect(after.run.state.compactedAt == at(50))
        #expect(after.run.state.version == before.run.state.version + 1)
        #expect(try await store.runSummary(id: old.id)?.state.compactedAt == at(50))
        #expect(try await store.events(runID: old.id, after: 0, limit: 100).isEmpty)
        #expect(try await store.events(runID: going.id, after: 0, limit: 100).count == 1)
        #expect(try await store.deliveries(webhookID: "wh_all", limit: 100, before: nil).items.allSatisfy { $0.runID == going.id })
        let retained = try await store.retainedEvents()
        #expect(retained.removedThrough == oldEvents.last?.seq)
        let oldestKept = try await store.events(runID: going.id, after: 0, limit: 1).first?.seq
        #expect(retained.oldestKept == oldestKept)
        // The key went with the events: the same key and body create a new run.
        let (again, againEvent) = makeRun("old", tasks: [task("a")], now: at(60))
        guard case .created = try await store.createRun(again, event: againEvent, idempotency: key) else {
            throw StoreTestError.unexpected("the compacted run's idempotency key still answered")
        }
        // And all of it is on disk.
        let reopened = try await reopen()
        #expect(try await reopened.run(id: old.id) == after)
        #expect(try await reopened.retainedEvents() == retained)
    }
}
