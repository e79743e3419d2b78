import Foundation
import RunwardenCore
import RunwardenStore
import Testing

/// The runner registry (SPEC §8) every backend must keep the same way.
@Suite("RunnerStore conformance")
struct RunnerStoreConformanceTests {
    @Test("a runner appears at its first contact with one runner.online event; later contacts update it and append nothing", arguments: Backend.all)
    func firstContactRegisters(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let first = try await store.recordContact(
            RunnerContact(name: "host-a", labels: ["linux"], version: "1.2.0", hostname: "a.example", concurrency: 2), now: at(1))
        #expect(first.draining == false)
        let event = try #require(first.events.first)
        #expect(first.events.count == 1)
        #expect(event.runSeq == nil)
        #expect(event.draft.runID == nil)
        #expect(event.draft.runner == "host-a")
        #expect(event.draft.type == "runner.online")
        #expect(event.draft.previousStatus == nil)
        #expect(try await store.events(runID: nil, after: 0, limit: 10) == [event])

        // A heartbeat carries no labels: the claim's stay.
        let again = try await store.recordContact(RunnerContact(name: "host-a", version: "1.3.0"), now: at(5))
        #expect(again.events.isEmpty)
        let runner = try #require(try await store.runner(name: "host-a"))
        #expect(runner.labels == ["linux"])
        #expect(runner.version == "1.3.0")
        #expect(runner.hostname == "a.example")
        #expect(runner.concurrency == 2)
        #expect(runner.firstSeenAt == at(1))
        #expect(runner.lastSeenAt == at(5))
        #expect(runner.recordedStatus == .online)
        #expect(try await store.runner(name: "host-b") == nil)
        #expect(try await store.latestSeq() == event.seq)
    }

    @Test("running lists the runner's active tasks only, and goes empty when they end", arguments: Backend.all)
    func runningFollowsClaims(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("a"), task("b"), task("c")])
        _ = try await store.recordContact(RunnerContact(name: "r1"), now: at(1))
        _ = try await store.recordContact(RunnerContact(name: "r2"), now: at(1))
        let a = try #require(try await store.claim(runner: "r1", labels: [], now: at(1))).value
        let b = try #require(try await store.claim(runner: "r2", labels: [], now: at(1))).value
        let c = try #require(try await store.claim(runner: "r1", labels: [], now: at(1))).value
        #expect(try await store.runner(name: "r1")?.running == [a.id, c.id].sorted())
        #expect(try await store.runner(name: "r2")?.running == [b.id])
        _ = try await store.update(runID: run.id, now: at(2)) { change in
            try change.report(taskID: a.id, StatusReport(status: .succeeded), runner: "r1")
        }
        #expect(try await store.runner(name: "r1")?.running == [c.id])
    }

    @Test("a silent runner is recorded lost when it holds tasks, offline when not, each once; contact brings it back online", arguments: Backend.all)
    func silenceIsRecordedOnce(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        _ = try await create(store, [task("a")])
        _ = try await store.recordContact(RunnerContact(name: "busy"), now: at(1))
        _ = try await store.recordContact(RunnerContact(name: "idle"), now: at(1))
        _ = try #require(try await store.claim(runner: "busy", labels: [], now: at(1)))
        _ = try await store.recordContact(RunnerContact(name: "fresh"), now: at(20))

        let silent = try await store.silentRunners(since: at(10), limit: 10)
        #expect(Set(silent) == ["busy", "idle"])
        let lost = try #require(try await store.recordSilence(runner: "busy", cutoff: at(10), now: at(31)))
        #expect(lost.draft.type == "runner.lost")
        #expect(lost.draft.previousStatus == "online")
        #expect(try await store.recordSilence(runner: "busy", cutoff: at(10), now: at(32)) == nil)
        #expect(try await store.recordSilence(runner: "fresh", cutoff: at(10), now: at(32)) == nil)
        #expect(try await store.recordSilence(runner: "idle", cutoff: at(10), now: at(32))?.draft.type == "runner.offline")
        #expect(try await store.silentRunners(since: at(10), limit: 10).isEmpty)
        #expect(try await store.runnerCounts() == [.online: 1, .lost: 1, .offline: 1])

        let back = try await store.recordContact(RunnerContact(name: "busy"), now: at(40))
        #expect(back.events.map(\.draft.type) == ["runner.online"])
        #expect(back.events.first?.draft.previousStatus == "lost")
        let types = try await store.events(runID: nil, after: 0, limit: 100).compactMap { $0.draft.runner == nil ? nil : $0.draft.type }
        #expect(types.filter { $0 == "runner.lost" }.count == 1)
    }

    @Test("two nodes recording the same silence at once announce it once", arguments: Backend.all)
    func racingSilenceIsRecordedOnce(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        let other = try await reopen()
        _ = try await store.recordContact(RunnerContact(name: "r1"), now: at(1))
        let results = try await withThrowingTaskGroup(of: Event?.self) { group in
            for node in [store, other, store, other] {
                group.addTask { try await node.recordSilence(runner: "r1", cutoff: at(10), now: at(31)) }
            }
            return try await group.reduce(into: [Event?]()) { $0.append($1) }
        }
        #expect(results.compactMap { $0 }.count == 1)
        let announced = try await store.events(runID: nil, after: 0, limit: 100).filter { $0.draft.type == "runner.offline" }
        #expect(announced.count == 1)
    }

    @Test("a goodbye records the runner offline once; an unknown runner's goodbye is nil", arguments: Backend.all)
    func goodbye(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        _ = try await store.recordContact(RunnerContact(name: "r1"), now: at(1))
        let bye = try #require(try await store.recordGoodbye(runner: "r1", now: at(2)))
        #expect(bye.events.map(\.draft.type) == ["runner.offline"])
        #expect(try await store.recordGoodbye(runner: "r1", now: at(3))?.events == [])
        #expect(try await store.recordGoodbye(runner: "nobody", now: at(3)) == nil)
        #expect(try await store.runner(name: "r1")?.recordedStatus == .offline)
        // Offline is not online: the reaper has nothing to record.
        #expect(try await store.silentRunners(since: at(100), limit: 10).isEmpty)
    }

    @Test("draining is kept across a restart and reported at each contact; an unknown runner cannot be drained", arguments: Backend.all)
    func drainingIsKept(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        _ = try await store.recordContact(RunnerContact(name: "r1"), now: at(1))
        #expect(try await store.setDraining(true, runner: "r1")?.draining == true)
        #expect(try await store.setDraining(true, runner: "nobody") == nil)
        let reopened = try await reopen()
        #expect(try await reopened.runner(name: "r1")?.draining == true)
        #expect(try await reopened.recordContact(RunnerContact(name: "r1"), now: at(2)).draining)
        _ = try await create(reopened, [task("a")])
        #expect(try await reopened.claim(runner: "r1", labels: [], now: at(2)) == nil, "a drained runner is handed nothing")
        #expect(try await reopened.setDraining(false, runner: "r1")?.draining == false)
        #expect(try await reopened.claim(runner: "r1", labels: [], now: at(2)) != nil)
        #expect(try await reopened.recordContact(RunnerContact(name: "r1"), now: at(3)).draining == false)
    }

    @Test("runners page by name", arguments: Backend.all)
    func runnersPage(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        for name in ["c", "a", "b"] { _ = try await store.recordContact(RunnerContact(name: name), now: at(1)) }
        let first = try await store.runners(limit: 2, after: nil)
        #expect(first.items.map(\.name) == ["a", "b"])
        #expect(first.nextCursor == "b")
        let second = try await store.runners(limit: 2, after: first.nextCursor)
        #expect(second.items.map(\.name) == ["c"])
        #expect(second.nextCursor == nil)
    }

    @Test("runner events reach the subscriptions asking for runner.* only, with a payload of the event alone", arguments: Backend.all)
    func runnerEventsAreDelivered(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        try await store.createWebhook(webhook("wh_A", events: ["runner.*"]))
        try await store.createWebhook(webhook("wh_B", events: ["run.*"]))
        try await store.createWebhook(webhook("wh_C", events: ["runner.lost"]))
        _ = try await store.recordContact(RunnerContact(name: "r1"), now: at(1))
        let due = try await store.dueDeliveries(now: at(1), limit: 10)
        #expect(due.map(\.webhookID) == ["wh_A"])
        let payload = try JSONValue.parse(try #require(due.first).payload)
        #expect(payload["type"] == .string("runner.online"))
        #expect(payload["runner"] == .string("r1"))
        #expect(payload["run_id"] == .null)
        #expect(payload["run_seq"] == .null)
        #expect(Outbox.runID(ofLane: try #require(due.first).runID) == nil)
    }
}

/// Per-runner tokens (SPEC §8) every backend must keep the same way.
@Suite("RunnerTokenStore conformance")
struct RunnerTokenStoreConformanceTests {
    @Test("a token is found by the digest of its secret only, pages by id, and is gone once revoked", arguments: Backend.all)
    func tokens(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        let scoped = RunnerToken(
            id: "rtk_A", digest: IdempotencyKey.digest("rwr_secret-a"), description: "builders",
            scope: RunnerTokenScope(runnerNames: ["build-*"], labels: ["linux"]), expiresAt: at(100), createdAt: at(1))
        let open = RunnerToken(
            id: "rtk_B", digest: IdempotencyKey.digest("rwr_secret-b"), description: "any", scope: RunnerTokenScope(runnerNames: nil, labels: nil),
            expiresAt: nil, createdAt: at(2))
        try await store.createRunnerToken(scoped)
        try await store.createRunnerToken(open)
        #expect(try await store.runnerToken(digest: IdempotencyKey.digest("rwr_secret-a")) == scoped)
        #expect(try await store.runnerToken(digest: "rwr_secret-a") == nil, "the secret itself is not a key")
        let first = try await store.runnerTokens(limit: 1, after: nil)
        #expect(first.items == [scoped])
        #expect(try await store.runnerTokens(limit: 1, after: first.nextCursor).items == [open])

        #expect(try await store.revokeRunnerToken(id: "rtk_A"))
        #expect(try await store.revokeRunnerToken(id: "rtk_A") == false)
        let other = try await reopen()
        #expect(try await other.runnerToken(digest: scoped.digest) == nil, "revoked for every node")
        #expect(try await other.runnerToken(digest: open.digest) == open)
    }
}

@Suite("RunnerStore retention conformance")
struct RunnerEventRetentionTests {
    @Test("retention removes runner events older than the cutoff with their deliveries, counts them removed, and leaves run events alone", arguments: Backend.all)
    func oldRunnerEventsGo(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        try await store.createWebhook(webhook("wh_A", events: ["*"]))
        _ = try await store.recordContact(RunnerContact(name: "r1"), now: at(1))
        let run = try await create(store, [task("a")], now: at(2))
        let old = try #require(try await store.recordGoodbye(runner: "r1", now: at(3))?.events.first)
        _ = try await store.recordContact(RunnerContact(name: "r1"), now: at(20))

        #expect(try await store.compactRunnerEvents(before: at(10), limit: 1) == 1, "a batch of one")
        #expect(try await store.compactRunnerEvents(before: at(10), limit: 10) == 1)
        #expect(try await store.compactRunnerEvents(before: at(10), limit: 10) == 0)
        let kept = try await store.events(runID: nil, after: 0, limit: 100)
        #expect(kept.map(\.draft.type) == ["run.created", "runner.online"])
        #expect(kept.first?.draft.runID == run.id)
        #expect(try await store.retainedEvents().removedThrough == old.seq)
        let lanes = try await store.deliveries(webhookID: "wh_A", limit: 10, before: nil).items.map(\.type)
        #expect(lanes.sorted() == ["run.created", "runner.online"])
    }
}
