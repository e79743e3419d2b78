import Foundation
import RunwardenCore
import RunwardenStore
import Testing

/// The subscriptions and the delivery outbox every backend must keep the same way.
@Suite("WebhookStore conformance")
struct WebhookStoreConformanceTests {
    @Test("each event goes to the outbox once per matching active subscription and to the run's callback", arguments: Backend.all)
    func outboxFollowsFilters(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let runHooks = webhook("wh_A", events: ["run.*"])
        let failures = webhook("wh_B", events: ["task.failed"])
        var disabled = webhook("wh_C", events: ["*"])
        disabled.isActive = false
        disabled.disabledReason = "gone"
        for hook in [runHooks, failures, disabled] { try await store.createWebhook(hook) }

        let run = try await createWithCallback(store, [task("build")])
        let created = try await store.events(runID: run.id, after: 0, limit: 10)
        let due = try await store.dueDeliveries(now: t0, limit: 10)
        #expect(due.count == 2)
        #expect(Set(due.map(\.webhookID)) == [runHooks.id, nil])
        for delivery in due {
            #expect(delivery.eventID == created[0].draft.id)
            #expect(delivery.eventSeq == created[0].seq)
            #expect(delivery.status == .pending)
            #expect(delivery.attempts.isEmpty)
            let payload = try JSONValue.parse(delivery.payload)
            #expect(payload["type"] == .string("run.created"))
            #expect(payload["seq"] == .int(created[0].seq))
            #expect(payload["run"]?["id"] == .string(run.id))
        }
        #expect(due.first { $0.webhookID == nil }?.url == "https://ci.example/hook")

        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        _ = try await store.update(runID: run.id, now: at(2)) { change in
            try change.report(taskID: claimed.value.id, StatusReport(status: .failed, exitCode: 1), runner: "r")
        }
        let (runDeliveries, _) = try await store.deliveries(webhookID: runHooks.id, limit: 10, before: nil)
        #expect(runDeliveries.map(\.type) == ["run.failed", "run.running", "run.created"])
        let (taskDeliveries, _) = try await store.deliveries(webhookID: failures.id, limit: 10, before: nil)
        #expect(taskDeliveries.map(\.type) == ["task.failed"])
        #expect(try await store.deliveries(webhookID: disabled.id, limit: 10, before: nil).items.isEmpty)
        // Seven due deliveries to three URLs: each URL's oldest, oldest first.
        let heads = try await store.dueDeliveries(now: at(2), limit: 100)
        #expect(Set(heads.prefix(2).map(\.url)) == ["https://hooks.example/wh_A", "https://ci.example/hook"])  // a tie: same event
        #expect(heads.last?.url == "https://hooks.example/wh_B")
        #expect(heads.map(\.type) == ["run.created", "run.created", "task.failed"])
        #expect(zip(heads, heads.dropFirst()).allSatisfy { ($0.nextAttemptAt!, $0.eventSeq) <= ($1.nextAttemptAt!, $1.eventSeq) })

        let firstPage = try await store.deliveries(webhookID: runHooks.id, limit: 2, before: nil)
        #expect(firstPage.items.map(\.type) == ["run.failed", "run.running"])
        let lastPage = try await store.deliveries(webhookID: runHooks.id, limit: 2, before: firstPage.nextCursor)
        #expect(lastPage.items.map(\.type) == ["run.created"])
        #expect(lastPage.nextCursor == nil)
        #expect(try await store.delivery(id: lastPage.items[0].id) == lastPage.items[0])
    }

    @Test("a change says whether it queued outbox rows: only then is the dispatcher woken", arguments: Backend.all)
    func committedSaysWhetherItQueuedDeliveries(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        // No subscription and no callback: events, but nothing for the outbox.
        let quiet = try await create(store, [task("build")])
        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        let running = try #require(
            try await store.update(runID: quiet.id, now: at(2)) { change in
                try change.report(taskID: claimed.value.id, StatusReport(status: .running), runner: "r")
            })
        #expect(!running.events.isEmpty && !running.queuedDeliveries)
        #expect(try await store.dueDeliveries(now: at(2), limit: 10).isEmpty)

        // A subscription to task events: the next report queues a row and says so.
        try await store.createWebhook(webhook("wh_T", events: ["task.*"]))
        let succeeded = try #require(
            try await store.update(runID: quiet.id, now: at(3)) { change in
                try change.report(taskID: claimed.value.id, StatusReport(status: .succeeded), runner: "r")
            })
        #expect(succeeded.queuedDeliveries)
        #expect(try await store.dueDeliveries(now: at(3), limit: 10).map(\.type) == ["task.succeeded"])
        // A run created with a callback queues its run.created for the callback, and says so.
        #expect(try await createCommittingWithCallback(store, [task("x")]).queuedDeliveries)
    }

    @Test("attempts retry, succeed, fail and disable; retry and recover re-queue", arguments: Backend.all)
    func attemptsAndRecovery(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let hook = webhook("wh_A", events: ["*"])
        try await store.createWebhook(hook)
        try await create(store, [task("a")])
        try await create(store, [task("b")], now: at(1))
        let (first, second) = try await {
            let both = try await store.deliveries(webhookID: hook.id, limit: 10, before: nil).items  // newest first
            return (both[1], both[0])
        }()
        #expect(try await store.dueDeliveries(now: at(1), limit: 10).map(\.id) == [first.id], "one URL: its oldest only")

        try await store.recordAttempt(
            deliveryID: first.id, DeliveryAttempt(at: at(2), statusCode: 503, latencyMs: 12, error: nil), verdict: .retry(at: at(60)))
        let retrying = try #require(try await store.delivery(id: first.id))
        #expect(retrying.status == .pending)
        #expect(retrying.nextAttemptAt == at(60))
        #expect(retrying.attempts == [DeliveryAttempt(at: at(2), statusCode: 503, latencyMs: 12, error: nil)])
        #expect(try await store.dueDeliveries(now: at(3), limit: 10).map(\.id) == [second.id])

        // A success to the same URL makes what waits for it due at once.
        try await store.recordAttempt(
            deliveryID: second.id, DeliveryAttempt(at: at(4), statusCode: 200, latencyMs: 5, error: nil), verdict: .succeeded)
        #expect(try await store.delivery(id: second.id)?.status == .succeeded)
        #expect(try await store.delivery(id: first.id)?.nextAttemptAt == at(4))

        try await store.recordAttempt(
            deliveryID: first.id, DeliveryAttempt(at: at(5), statusCode: 410, latencyMs: 5, error: nil),
            verdict: .failedAndDisable(reason: "the receiver answered 410 Gone"))
        let gone = try #require(try await store.webhook(id: hook.id))
        #expect(!gone.isActive)
        #expect(gone.disabledReason == "the receiver answered 410 Gone")
        let failed = try #require(try await store.delivery(id: first.id))
        #expect(failed.status == .failed)
        #expect(failed.nextAttemptAt == nil)
        #expect(failed.attempts.count == 2)

        // Disabled: nothing more is sent for it — no retry, no recovery.
        #expect(try await store.retryDelivery(id: second.id, now: at(6)) == .inactive)
        #expect(try await store.delivery(id: second.id)?.status == .succeeded)
        #expect(try await store.retryDelivery(id: "dlv_unknown", now: at(6)) == .unknown)
        #expect(try await store.recoverDeliveries(webhookID: hook.id, since: t0, now: at(7)) == 0)
        #expect(try await store.dueDeliveries(now: at(7), limit: 10).isEmpty)

        #expect(try await store.deleteWebhook(id: hook.id, now: at(8)))
        #expect(try await !store.deleteWebhook(id: hook.id, now: at(8)))
        #expect(try await store.webhook(id: hook.id) == nil)
        #expect(try await store.dueDeliveries(now: at(9), limit: 10).isEmpty)
        #expect(try await store.delivery(id: first.id)?.status == .failed)
    }

    @Test("a delivery leased by one dispatcher is not made due again by a success to its URL or a manual retry", arguments: Backend.all)
    func leasedDeliveryStaysWithItsDispatcher(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        try await store.createWebhook(webhook("wh_A", events: ["run.created"]))
        try await create(store, [task("a")])
        try await create(store, [task("b")], now: at(1))
        let due = try await store.deliveries(webhookID: "wh_A", limit: 10, before: nil).items
        try #require(due.count == 2)
        let (inFlight, other) = (due[1], due[0])

        // Node 1 leases the first and is attempting it; node 2 attempts the second, which succeeds.
        #expect(try await store.leaseDelivery(id: inFlight.id, now: at(2), until: at(50)) != nil)
        #expect(try await store.leaseDelivery(id: other.id, now: at(2), until: at(50)) != nil)
        try await store.recordAttempt(
            deliveryID: other.id, DeliveryAttempt(at: at(3), statusCode: 204, latencyMs: 4, error: nil), verdict: .succeeded)
        #expect(try await store.retryDelivery(id: inFlight.id, now: at(4)) == .requeued)

        #expect(try await store.dueDeliveries(now: at(5), limit: 10).isEmpty, "an in-flight delivery was made due again")
        #expect(try await store.leaseDelivery(id: inFlight.id, now: at(5), until: at(60)) == nil)
        // Its own attempt's verdict is what counts; after it, it is an ordinary delivery again.
        try await store.recordAttempt(
            deliveryID: inFlight.id, DeliveryAttempt(at: at(6), statusCode: 503, latencyMs: 4, error: nil), verdict: .retry(at: at(40)))
        #expect(try await store.retryDelivery(id: inFlight.id, now: at(7)) == .requeued)
        #expect(try await store.dueDeliveries(now: at(7), limit: 10).map(\.id) == [inFlight.id])
    }

    @Test("the due query gives each URL its oldest due delivery, so one URL's backlog cannot crowd out another", arguments: Backend.all)
    func dueDeliveriesAreFairAcrossURLs(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let down = webhook("wh_down", events: ["run.created"])
        try await store.createWebhook(down)
        for index in 0..<30 { try await create(store, [task("a\(index)")], now: at(index)) }
        let healthy = webhook("wh_healthy", events: ["run.created"])
        try await store.createWebhook(healthy)
        try await create(store, [task("late")], now: at(40))

        let due = try await store.dueDeliveries(now: at(41), limit: 2)
        #expect(due.map(\.url) == [down.url, healthy.url], "\(due.map(\.url))")
        let downDeliveries = try await store.deliveries(webhookID: down.id, limit: 100, before: nil).items
        #expect(due.first?.id == downDeliveries.last?.id, "not the down URL's oldest")
        // With the down URL's head leased (in flight), its next one is its head.
        #expect(try await store.leaseDelivery(id: due[0].id, now: at(41), until: at(100)) != nil)
        let next = try await store.dueDeliveries(now: at(42), limit: 10)
        #expect(next.map(\.id) == [downDeliveries[downDeliveries.count - 2].id, due[1].id])
    }

    @Test("per URL, the due query gives each run's oldest due delivery, runs oldest first, so one run's events go in order", arguments: Backend.all)
    func dueDeliveriesPerRun(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let hook = webhook("wh_all", events: ["*"])
        try await store.createWebhook(hook)
        var runs: [Run] = []
        for index in 0..<5 { runs.append(try await create(store, [task("a\(index)")], now: at(index))) }
        // The first run has two events: its second waits behind its first.
        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(10)))
        #expect(claimed.value.runID == runs[0].id)

        let heads = try await store.dueDeliveries(url: hook.url, now: at(11), limit: 3)
        #expect(heads.map(\.runID) == runs.prefix(3).map(\.id))
        #expect(heads.first?.type == "run.created", "a run's first event before its later ones")
        #expect(try await store.dueDeliveries(url: hook.url, now: at(11), limit: 10).count == 5)
        #expect(try await store.dueDeliveries(url: "https://hooks.example/nobody", now: at(11), limit: 10).isEmpty)

        // Once the head is attempted, the run's next event is its head.
        let first = try #require(heads.first)
        #expect(try await store.leaseDelivery(id: first.id, now: at(11), until: at(100)) != nil)
        try await store.recordAttempt(
            deliveryID: first.id, DeliveryAttempt(at: at(12), statusCode: 204, latencyMs: 3, error: nil), verdict: .succeeded)
        let next = try await store.dueDeliveries(url: hook.url, now: at(13), limit: 1)
        #expect(next.map(\.runID) == [runs[0].id])
        #expect(next.first?.type == "task.dispatched")
        // Nothing due before its time.
        #expect(try await store.dueDeliveries(url: hook.url, now: at(-100), limit: 10).isEmpty)
    }

    @Test("a lease reads the secret from the subscription or the run; deliveries keep no copy", arguments: Backend.all)
    func leaseReadsTheSecret(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let hook = webhook("wh_A", events: ["run.created"])
        try await store.createWebhook(hook)
        let run = try await createWithCallback(store, [task("build")])
        let due = try await store.dueDeliveries(now: at(1), limit: 10)
        try #require(due.count == 2)
        var secrets: [String?: String?] = [:]
        for delivery in due { secrets[delivery.webhookID] = try await store.leaseDelivery(id: delivery.id, now: at(1), until: at(60))?.secret }

        #expect(secrets[hook.id] == .some(hook.secret))
        #expect(secrets[nil] == .some(run.spec.callbackSecret))
    }

    @Test("a deleted subscription's pending deliveries are never leased again, and cannot be retried or recovered", arguments: Backend.all)
    func deletedSubscriptionSendsNothingMore(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let hook = webhook("wh_A", events: ["*"])
        try await store.createWebhook(hook)
        try await create(store, [task("a")])
        let deliveries = try await store.deliveries(webhookID: hook.id, limit: 10, before: nil).items
        try #require(deliveries.count == 1)
        let leased = deliveries[0]
        #expect(try await store.leaseDelivery(id: leased.id, now: at(1), until: at(50)) != nil)
        try await create(store, [task("b")], now: at(2))
        let waiting = try #require(try await store.deliveries(webhookID: hook.id, limit: 10, before: nil).items.first)

        #expect(try await store.deleteWebhook(id: hook.id, now: at(3)))
        // The attempt in flight when it was deleted ends with a retryable failure: no retry follows.
        try await store.recordAttempt(
            deliveryID: leased.id, DeliveryAttempt(at: at(4), statusCode: 503, latencyMs: 3, error: "HTTP 503"), verdict: .retry(at: at(5)))

        #expect(try await store.delivery(id: leased.id)?.status == .failed)
        #expect(try await store.delivery(id: waiting.id)?.status == .failed)
        #expect(try await store.dueDeliveries(now: at(100), limit: 10).isEmpty)
        #expect(try await store.leaseDelivery(id: waiting.id, now: at(100), until: at(150)) == nil)
        #expect(try await store.retryDelivery(id: waiting.id, now: at(100)) == .inactive)
        #expect(try await store.retryDelivery(id: leased.id, now: at(100)) == .inactive)
        #expect(try await store.recoverDeliveries(webhookID: hook.id, since: t0, now: at(100)) == 0)
        #expect(try await store.dueDeliveries(now: at(200), limit: 10).isEmpty)
        #expect(try await store.deliveries(webhookID: hook.id, limit: 10, before: nil).items.count == 2, "the rows stay")
    }

    @Test("subscriptions read back and page oldest first", arguments: Backend.all)
    func subscriptionPages(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        var hooks: [Webhook] = []
        for index in 0..<3 {
            var hook = webhook("wh_\(index)", events: ["run.*", "task.failed"])
            hook.description = index == 1 ? nil : "hook \(index)"
            hooks.append(hook)
            try await store.createWebhook(hook)
        }
        #expect(try await store.webhook(id: "wh_1") == hooks[1])
        #expect(try await store.webhook(id: "wh_9") == nil)
        let first = try await store.webhooks(limit: 2, after: nil)
        #expect(first.items == Array(hooks[0..<2]))
        let rest = try await store.webhooks(limit: 2, after: first.nextCursor)
        #expect(rest.items == [hooks[2]])
        #expect(rest.nextCursor == nil)
    }
}

func webhook(_ id: String, events: [String]) -> Webhook {
    Webhook(id: id, url: "https://hooks.example/\(id)", events: events, secret: "whsec_c2VjcmV0", description: "hook", createdAt: t0)
}

/// A run with a `callback_url`: its `run.*` events go there too.
private func createWithCallback(_ store: any RunStore, _ tasks: [TaskSpec]) async throws -> Run {
    try await createCommittingWithCallback(store, tasks).record.run
}

private func createCommittingWithCallback(_ store: any RunStore, _ tasks: [TaskSpec]) async throws -> Committed<Void> {
    let spec = RunSpec(workflow: "deploy", callbackURL: "https://ci.example/hook", callbackSecret: "whsec_Y2FsbGJhY2s=")
    let (run, event) = Run.create(
        RunDefinition(run: spec, tasks: tasks), id: Identifier.make(.run, at: t0),
        taskIDs: tasks.map { _ in Identifier.make(.task, at: t0) }, eventID: Identifier.make(.evt, at: t0), now: t0)
    guard case .created(let committed) = try await store.createRun(run, event: event, idempotency: nil) else {
        throw StoreTestError.unexpected("create did not create")
    }
    return committed
}
