import Foundation
import RunwardenCore
import RunwardenStore
import Testing

/// SPEC §11 in the stores: a run's trace context is kept with it, and each change reports the
/// attempts it ended — with the claim time a retry clears — for their spans.
@Suite("Trace context and ended attempts in the stores")
struct TraceStoreTests {
    static let trace = RunTrace(
        traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "b7ad6b7169203331", parentSpanID: "00f067aa0ba902b7",
        sampled: true, traceState: "vendor=value")

    @Test("a run's trace context is stored with it and reads back whole", arguments: Backend.all)
    func traceReadsBack(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        let definition = RunDefinition(run: RunSpec(workflow: "traced", trace: Self.trace), tasks: [task("a")])
        let (run, event) = Run.create(
            definition, id: Identifier.make(.run, at: t0), taskIDs: [Identifier.make(.task, at: t0)],
            eventID: Identifier.make(.evt, at: t0), now: t0)
        _ = try await store.createRun(run, event: event, idempotency: nil)

        #expect(try await store.run(id: run.id)?.run.spec.trace == Self.trace)
        #expect(try await reopen().run(id: run.id)?.run.spec.trace == Self.trace)
        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        #expect(claimed.record.run.spec.trace == Self.trace, "a claim sees the trace it hands out")
    }

    @Test("a report that ends a task reports the attempt it ended, from its claim to its end", arguments: Backend.all)
    func endedByReport(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("a")])
        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        #expect(claimed.endedAttempts.isEmpty)
        let running = try #require(
            try await store.update(runID: run.id, now: at(2)) { change in
                try change.report(taskID: claimed.value.id, StatusReport(status: .running), runner: "r")
            })
        #expect(running.endedAttempts.isEmpty, "running ends no attempt")
        let ended = try #require(
            try await store.update(runID: run.id, now: at(3)) { change in
                try change.report(taskID: claimed.value.id, StatusReport(status: .failed, exitCode: 2), runner: "r")
            })

        #expect(
            ended.endedAttempts == [
                EndedAttempt(taskID: claimed.value.id, taskName: "a", attempt: 1, claimedAt: at(1), endedAt: at(3), status: "failed")
            ])
    }

    @Test("a lost lease that retries the task reports the attempt it ended as retrying", arguments: Backend.all)
    func endedByRetry(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("a", retries: 1)])
        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        let retried = try #require(
            try await store.update(runID: run.id, now: at(40)) { change in change.leaseExpired(taskID: claimed.value.id) })

        #expect(retried.record.run.tasks.first?.state.attempt == 2)
        #expect(retried.record.run.tasks.first?.state.claimedAt == nil)
        #expect(
            retried.endedAttempts == [
                EndedAttempt(taskID: claimed.value.id, taskName: "a", attempt: 1, claimedAt: at(1), endedAt: at(40), status: "retrying")
            ])
    }

    @Test("canceling a run ends only the attempts that were claimed", arguments: Backend.all)
    func endedByCancel(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("a"), task("b", needs: ["a"])])
        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        _ = try await store.update(runID: run.id, now: at(2)) { change in try change.cancel() }
        let ended = try #require(
            try await store.update(runID: run.id, now: at(3)) { change in
                try change.report(taskID: claimed.value.id, StatusReport(status: .canceled), runner: "r")
            })

        #expect(ended.endedAttempts.map(\.taskID) == [claimed.value.id])
        #expect(ended.endedAttempts.first?.status == "canceled")
        #expect(ended.record.run.status == .canceled)
    }
}
