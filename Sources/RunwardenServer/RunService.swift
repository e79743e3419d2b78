import Foundation
import Logging
import ServiceLifecycle
import RunwardenCore
import RunwardenStore

/// The application layer between routes and the store: stamps time and ids, commits through
/// the store, then wakes whoever waits on what changed. Long-polls live here too.
///
/// Routes and background workers reach the store only through here, so every store call is
/// timed in `/metrics` and every failure is a domain error (`RunwardenError`, `TransitionError`,
/// `ValidationFailure`, `StoreError`) that `ErrorMiddleware` alone turns into HTTP.
public struct RunService: Sendable {
    let store: any RunStore
    public let hub: ChangeHub
    public let leaseSeconds: Int
    public let clock: @Sendable () -> Timestamp
    public let logger: Logger
    /// Whether the store's schema exists yet (see `SchemaReady`).
    public let schema: SchemaReady
    public let metrics: ServerMetrics
    /// How much of one attempt's output is kept (`--log-max-bytes`).
    public let logCap: LogCap
    /// Where the spans of runs go (SPEC §11); nil when the server does not trace: then no run
    /// gets a trace and no span is built.
    let runSpans: RunSpanExporter?
    /// The runner contacts this node wrote lately (shared by every copy of this service).
    let contacts = ContactLedger()

    public init(
        store: any RunStore, hub: ChangeHub = ChangeHub(), leaseSeconds: Int,
        clock: @escaping @Sendable () -> Timestamp = { Timestamp(Date()) }, logger: Logger = Logger(label: "runwarden"),
        schema: SchemaReady = SchemaReady(ready: true), metrics: ServerMetrics = ServerMetrics(),
        logCap: LogCap = LogCap(maxBytes: LogCap.defaultMaxBytes), runSpans: RunSpanExporter? = nil
    ) {
        self.runSpans = runSpans
        self.logCap = logCap
        self.schema = schema
        self.metrics = metrics
        self.store = store
        self.hub = hub
        self.leaseSeconds = leaseSeconds
        self.clock = clock
        self.logger = logger
    }

    // MARK: - Runs

    public enum CreateResult: Sendable {
        case created(RunRecord)
        case replayed(RunRecord)
    }

    /// Stores a new run; its id is returned only after the commit (SPEC §1: no phantom 202).
    /// When the server traces, the run's trace is a child of `traceparent`'s span, if well formed.
    public func create(
        _ definition: RunDefinition, idempotency: IdempotencyKey?, traceparent: String? = nil, tracestate: String? = nil
    ) async throws -> CreateResult {
        let now = clock()
        var definition = definition
        if runSpans != nil { definition.run.trace = RunTrace.begin(traceparent: traceparent, tracestate: tracestate) }
        if definition.run.callbackURL != nil, definition.run.callbackSecret == nil {
            definition.run.callbackSecret = WebhookSecret.generate()  // shown once, in the create answer
        }
        let runID = Identifier.make(.run, at: now)
        let taskIDs = definition.tasks.map { _ in Identifier.make(.task, at: now) }
        let (run, event) = Run.create(definition, id: runID, taskIDs: taskIDs, eventID: Identifier.make(.evt, at: now), now: now)
        return try await commitNewRun(run, event: event, idempotency: idempotency)
    }

    /// Stores a new run that repeats the finished run `id` (SPEC §10); the earlier run lists
    /// it in `reruns` from the same commit on.
    public func rerun(_ id: String, _ selection: RerunSelection, idempotency: IdempotencyKey?) async throws -> CreateResult {
        let earlier = try await run(id).run
        let now = clock()
        let runID = Identifier.make(.run, at: now)
        let taskIDs = earlier.tasks.map { _ in Identifier.make(.task, at: now) }
        let (run, event) = try earlier.rerun(
            selection, id: runID, taskIDs: taskIDs, eventID: Identifier.make(.evt, at: now), now: now,
            trace: runSpans.map { _ in RunTrace.begin(traceparent: nil, tracestate: nil) })
        let result = try await commitNewRun(run, event: event, idempotency: idempotency)
        if case .created = result { await hub.notify([.run(id)]) }
        return result
    }

    /// Stores a new run with its `run.created` event and the `task.queued` of its approval tasks
    /// that wait from the start (webhook subscribers can ask a person at once).
    private func commitNewRun(_ run: Run, event: EventDraft, idempotency: IdempotencyKey?) async throws -> CreateResult {
        let events = [event] + run.approvalRequests { Identifier.make(.evt, at: run.state.createdAt) }
        switch try await timed("create_run", { try await store.createRun(run, events: events, idempotency: idempotency) }) {
        case .created(let committed):
            await publish(committed)
            logger.info(
                "run created",
                metadata: [
                    "run_id": "\(run.id)", "workflow": "\(run.spec.workflow)", "tasks": "\(run.tasks.count)",
                    "rerun_of": "\(run.spec.rerunOf ?? "")",
                ])
            return .created(committed.record)
        case .replayed(let record):
            return .replayed(record)
        case .keyReused:
            throw RunwardenError(.idempotencyKeyReused, "this Idempotency-Key was already used with a different body")
        }
    }

    /// A page of runs, newest first, without their tasks' detail.
    public func runs(_ query: RunQuery) async throws -> RunPage {
        try await timed("list_runs") { try await store.runs(query) }
    }

    public func run(_ id: String) async throws -> RunRecord {
        guard let record = try await timed("read_run", { try await store.run(id: id) }) else { throw RunwardenError.notFound(.run, id) }
        return record
    }

    /// The `held_by` of a run waiting for a slot of its concurrency key; empty (nothing read)
    /// for any other run.
    public func concurrencyHolders(of run: Run) async throws -> [String] {
        guard run.state.concurrencySlot == .waiting, let key = run.spec.concurrency?.key else { return [] }
        return try await timed("read_concurrency_holders") { try await store.concurrencyHolders(key: key) }
    }

    /// The store's stamp of the run's snapshot, when it can tell without reading (`SnapshotStamp`).
    public func snapshotStamp(_ id: String) -> SnapshotStamp? {
        store.snapshotStamp(runID: id)
    }

    /// A long-poll stops waiting (and answers what there is) when its task is cancelled, the
    /// server is shutting down, or its client went away.
    static var waitIsOver: Bool {
        Task.isCancelled || Task.isShuttingDownGracefully || WaitInterrupt.current?.isFired == true
    }

    /// The run without reading its tasks (`RunStore.runSummary`).
    public func runSummary(_ id: String) async throws -> Run {
        guard let run = try await timed("read_run_summary", { try await store.runSummary(id: id) }) else {
            throw RunwardenError.notFound(.run, id)
        }
        return run
    }

    /// The run once its `version` is past `afterVersion`, or as it is when `wait` runs out;
    /// without `withTasks`, its summary only (no lock holders either).
    public func run(_ id: String, afterVersion: Int?, wait: Duration, withTasks: Bool = true) async throws -> RunRecord {
        let deadline = ContinuousClock.now + wait
        while true {
            let generation = await hub.generation(of: .run(id))
            let record: RunRecord
            if withTasks {
                record = try await run(id)
            } else {
                let summary = try await runSummary(id)
                record = RunRecord(run: summary, lockHolders: [:], concurrencyHolders: try await concurrencyHolders(of: summary))
            }
            guard let afterVersion, record.run.state.version <= afterVersion else { return record }
            let remaining = deadline - .now
            if remaining <= .zero || Self.waitIsOver { return record }
            await hub.wait(for: .run(id), after: generation, timeout: remaining)
        }
    }

    public func cancel(_ id: String) async throws -> RunRecord {
        let committed = try await timed("cancel") {
            try await store.update(runID: id, now: clock()) { change in try change.cancel() }
        }
        guard let committed else { throw RunwardenError.notFound(.run, id) }
        await publish(committed)
        logger.info("run cancel requested", metadata: ["run_id": "\(id)", "status": "\(committed.record.run.status.rawValue)"])
        return committed.record
    }

    /// Cancels every unfinished run `filter` names (SPEC §10): a page of runs at a time, each
    /// run in its own change, as a single cancel would; returns how many it canceled. Runs that
    /// ended or were already canceling meanwhile are not counted.
    public func cancelRuns(_ filter: RunFilter) async throws -> Int {
        let cancelable: [RunStatus] = [.queued, .running]
        let statuses = filter.statuses.map { $0.filter(cancelable.contains) } ?? cancelable
        guard !statuses.isEmpty else { return 0 }
        var query = RunQuery(
            workflow: filter.workflow, limit: 200, statuses: statuses, metadata: filter.metadata, createdAfter: filter.createdAfter,
            createdBefore: filter.createdBefore)
        var canceled = 0
        while true {
            let page = try await runs(query)
            for run in page.runs {
                do {
                    let record = try await cancel(run.id)
                    if record.run.status == .canceled || record.run.status == .canceling { canceled += 1 }
                } catch TransitionError.runTerminal {
                    continue  // it ended while we went through the list
                }
            }
            guard let next = page.nextCursor else { return canceled }
            query.before = next
        }
    }

    // MARK: - Events

    /// Events after `seq` (one run's, or all when `runID` is nil); with `wait`, long-polls
    /// until there is at least one.
    public func events(runID: String?, after seq: Int64, limit: Int, wait: Duration) async throws -> [Event] {
        let topic: ChangeHub.Topic = runID.map { .run($0) } ?? .events
        let deadline = ContinuousClock.now + wait
        while true {
            let generation = await hub.generation(of: topic)
            let events = try await timed("read_events", { try await store.events(runID: runID, after: seq, limit: limit) })
            if !events.isEmpty { return events }
            if let runID, try await store.runSummary(id: runID) == nil { throw RunwardenError.notFound(.run, runID) }
            let remaining = deadline - .now
            if remaining <= .zero || Self.waitIsOver { return [] }
            await hub.wait(for: topic, after: generation, timeout: remaining)
        }
    }

    /// The newest event's `seq` (0 when there is none): where a live-only stream starts.
    public func latestSeq() async throws -> Int64 {
        try await store.latestSeq()
    }

    // MARK: - Runner protocol

    public func task(_ id: String) async throws -> (record: RunRecord, task: RunTask) {
        guard let (record, index) = try await store.task(id: id) else { throw RunwardenError.notFound(.task, id) }
        return (record, record.run.tasks[index])
    }

    /// What a claim got.
    public enum ClaimOutcome: Sendable, Equatable {
        /// The claimed task, and its run's trace (SPEC §11) when it has one.
        case task(RunTask, trace: RunTrace?)
        /// Nothing claimable came within the wait.
        case nothing
        /// The runner is draining (SPEC §8): it is given nothing until it is resumed.
        case draining
    }

    /// The oldest claimable task this runner can run, waiting up to `wait` for one. A claim
    /// repeated with the same `claimID` gets the task the first one took, if it is still waiting.
    ///
    /// The claim is the runner's contact (`RunnerStore.recordContact`), recorded again every
    /// third of a lease while it waits: a runner parked in a long-poll longer than the lease is
    /// still there. A draining runner waits like any other and takes nothing, unless a resume
    /// comes while it waits.
    ///
    /// `recheck` runs before every look after the first: a per-runner token revoked while its
    /// claim waits must not take the next task (it throws, and nothing is claimed).
    public func claim(
        _ contact: RunnerContact, labels: Set<String>, claimID: String? = nil, wait: Duration,
        recheck: (@Sendable () async throws -> Void)? = nil
    ) async throws -> ClaimOutcome {
        let runner = contact.name
        let deadline = ContinuousClock.now + wait
        var draining = try await recordContact(contact)
        let drainedBefore = draining
        while true {
            let generation = await hub.generation(of: .claims)
            if !draining,
                let committed = try await timed("claim", { try await store.claim(runner: runner, labels: labels, claimID: claimID, now: clock()) })
            {
                await publish(committed)
                logger.info(
                    committed.events.isEmpty ? "task claimed again: the runner repeated a claim whose answer it lost" : "task claimed",
                    metadata: ["run_id": "\(committed.value.runID)", "task_id": "\(committed.value.id)", "runner": "\(runner)"])
                return .task(committed.value, trace: committed.record.run.spec.trace)
            }
            let remaining = deadline - .now
            let outcome: ClaimOutcome = draining ? .draining : .nothing
            if remaining <= .zero || Self.waitIsOver { return outcome }
            await hub.wait(for: .claims, after: generation, timeout: min(remaining, contactInterval))
            // Not one more claim for a runner that is gone: it would hold a task nobody runs.
            if Self.waitIsOver { return outcome }
            try await recheck?()
            // Every wake-up may be a drain or a resume of this runner (`setDraining` wakes claims
            // and moves `runners`, so the ledger does not answer for a contact from before it);
            // a tenth of a lease after the last write, the contact is written again.
            draining = try await recordContact(RunnerContact(name: runner))
            // Drained while it waited: it hears so now (and logs it), then waits for a resume.
            if draining, !drainedBefore { return .draining }
        }
    }

    /// How often a waiting claim counts as contact again: a third of the lease, as the runner heartbeats.
    var contactInterval: Duration { .milliseconds(max(100, Int64(leaseSeconds) * 1000 / 3)) }

    /// How long a written contact vouches for the ones after it that say nothing new
    /// (`ContactLedger`): a tenth of a lease, so a dead runner is still found lost at most a
    /// tenth of a lease later than if every contact were written.
    var contactRewriteInterval: Duration { .milliseconds(max(10, Int64(leaseSeconds) * 100)) }

    public func heartbeat(_ contact: RunnerContact, taskIDs: [String]) async throws -> [String] {
        _ = try await recordContact(contact)
        return try await timed("heartbeat") { try await store.heartbeat(runner: contact.name, taskIDs: taskIDs, now: clock()) }
    }

    // MARK: - Runner registry

    /// Records a claim's or heartbeat's contact and announces the runner if it just came online;
    /// returns whether it is draining.
    /// A contact that says nothing new within a tenth of a lease of the last one this node
    /// wrote is not written again (`ContactLedger`).
    private func recordContact(_ contact: RunnerContact) async throws -> Bool {
        let now = clock()
        let generation = await hub.generation(of: .runners)
        if let draining = contacts.draining(ifRecorded: contact, within: contactRewriteInterval, now: now, generation: generation) {
            return draining
        }
        let touch = try await timed("runner_contact") { try await store.recordContact(contact, now: now) }
        contacts.note(contact, draining: touch.draining, now: now, generation: generation, interval: contactRewriteInterval)
        await publishRunnerEvents(touch.events)
        return touch.draining
    }

    /// The runner stopped gracefully: it shows `offline` at once, not `lost` a lease later.
    public func goodbye(runner name: String) async throws -> RunnerItem {
        guard let touch = try await timed("runner_goodbye", { try await store.recordGoodbye(runner: name, now: clock()) }) else {
            throw RunwardenError.notFound(.runner, name)
        }
        await hub.notify([.runners])
        await publishRunnerEvents(touch.events)
        return try await runner(name)
    }

    public func runner(_ name: String) async throws -> RunnerItem {
        guard let runner = try await timed("read_runner", { try await store.runner(name: name) }) else {
            throw RunwardenError.notFound(.runner, name)
        }
        return runnerItem(runner)
    }

    public func runners(limit: Int, after cursor: String?) async throws -> (items: [RunnerItem], nextCursor: String?) {
        let page = try await timed("list_runners") { try await store.runners(limit: limit, after: cursor) }
        return (page.items.map(runnerItem), page.nextCursor)
    }

    /// Drains (or resumes) a runner; persisted, so it survives restarts. A resume wakes waiting
    /// claims, the resumed runner's among them.
    public func setDraining(_ draining: Bool, runner name: String) async throws -> RunnerItem {
        guard let runner = try await timed("drain_runner", { try await store.setDraining(draining, runner: name) }) else {
            throw RunwardenError.notFound(.runner, name)
        }
        // Waiting claims look again: a resumed runner's may take work, a drained runner's
        // answers `Runwarden-Drain` at once (so its log says so now, not after its long-poll).
        await hub.notify([.claims, .runners])
        logger.notice(draining ? "runner draining" : "runner resumed", metadata: ["runner": "\(name)"])
        return runnerItem(runner)
    }

    /// How many runners have each status, as their last events announced (for `/metrics`).
    public func runnerCounts() async throws -> [RunnerStatus: Int] { try await store.runnerCounts() }

    private func runnerItem(_ runner: Runner) -> RunnerItem {
        RunnerItem(runner, now: clock(), leaseMilliseconds: Int64(leaseSeconds) * 1000)
    }

    private func publishRunnerEvents(_ events: [Event]) async {
        guard !events.isEmpty else { return }
        metrics.recordCommitted(events, run: nil)
        for event in events {
            logger.notice("runner \(event.draft.status)", metadata: ["runner": "\(event.draft.runner ?? "")"])
        }
        await hub.notify([.events, .deliveries])
    }

    /// Records runners not heard from for a lease as `lost` (holding tasks) or `offline`, each
    /// with its event; before their tasks' leases are reaped, or a lost runner's tasks would
    /// already be gone and it would read `offline`.
    private func reapRunners(leaseCutoff: Timestamp, now: Timestamp, limit: Int) async throws {
        for name in try await timed("silent_runners", { try await store.silentRunners(since: leaseCutoff, limit: limit) }) {
            let event = try await timed("record_silence") { try await store.recordSilence(runner: name, cutoff: leaseCutoff, now: now) }
            if let event {
                await hub.notify([.runners])
                await publishRunnerEvents([event])
            }
        }
    }

    /// Applies a runner's report; returns whether it changed anything, and the run and task after it.
    /// A per-runner token's `scope` reports only tasks claimed under a name it allows.
    public func report(
        taskID: String, _ report: StatusReport, runner: String?, scope: RunnerTokenScope? = nil
    ) async throws -> (applied: Bool, record: RunRecord, task: RunTask) {
        let committed = try await timed("report") {
            // Only a report that ends the task can release or skip the tasks that need it.
            try await store.update(runOfTask: taskID, dependents: report.status.isTerminal, now: clock()) { change in
                try change.report(taskID: taskID, report, runner: runner, scope: scope)
            }
        }
        guard let committed, let index = committed.record.run.taskIndex(id: taskID) else {
            throw RunwardenError.notFound(.task, taskID)
        }
        if committed.value {
            await publish(committed)
            logger.info(
                "task report applied",
                metadata: [
                    "run_id": "\(committed.record.run.id)", "task_id": "\(taskID)", "status": "\(report.status.rawValue)",
                ])
        }
        return (committed.value, committed.record, committed.record.run.tasks[index])
    }

    /// Approves or rejects an approval task waiting `queued` (SPEC §10); `by` is who decided.
    public func decideApproval(
        taskID: String, approved: Bool, by: String, comment: String?
    ) async throws -> (record: RunRecord, task: RunTask) {
        let now = clock()
        let decision = ApprovalDecision(approved: approved, by: by, comment: comment, at: now)
        let committed = try await timed("approval") {
            try await store.update(runOfTask: taskID, dependents: true, now: now) { change in
                try change.decideApproval(taskID: taskID, decision)
            }
        }
        guard let committed, let index = committed.record.run.taskIndex(id: taskID) else {
            throw RunwardenError.notFound(.task, taskID)
        }
        await publish(committed)
        logger.info(
            approved ? "task approved" : "task rejected",
            metadata: ["run_id": "\(committed.record.run.id)", "task_id": "\(taskID)", "by": "\(by)"])
        return (committed.record, committed.record.run.tasks[index])
    }

    // MARK: - Per-runner tokens

    /// A new per-runner token and its secret, which is in the answer and nowhere else: the store
    /// keeps its SHA-256 only.
    public func createRunnerToken(_ definition: RunnerTokenDefinition) async throws -> (token: RunnerToken, secret: String) {
        let now = clock()
        let secret = RunnerToken.generateSecret()
        let token = RunnerToken(
            id: Identifier.make(.rtk, at: now), digest: IdempotencyKey.digest(secret), description: definition.description,
            scope: definition.scope, expiresAt: definition.expiresAt, createdAt: now)
        try await timed("create_runner_token") { try await store.createRunnerToken(token) }
        logger.notice("runner token created", metadata: ["runner_token_id": "\(token.id)"])
        return (token, secret)
    }

    /// The token with this secret (its SHA-256, as stored); nil when there is none.
    public func runnerToken(secret: String) async throws -> RunnerToken? {
        try await timed("read_runner_token") { try await store.runnerToken(digest: IdempotencyKey.digest(secret)) }
    }

    public func runnerTokens(limit: Int, after cursor: String?) async throws -> (items: [RunnerToken], nextCursor: String?) {
        try await timed("list_runner_tokens") { try await store.runnerTokens(limit: limit, after: cursor) }
    }

    /// Revokes a token: refused from the next request on, on every node (it is looked up each time).
    public func revokeRunnerToken(_ id: String) async throws {
        guard try await timed("revoke_runner_token", { try await store.revokeRunnerToken(id: id) }) else {
            throw RunwardenError.notFound(.runnerToken, id)
        }
        logger.notice("runner token revoked", metadata: ["runner_token_id": "\(id)"])
    }

    // MARK: - Locks

    public func locks() async throws -> [WorkspaceLock] { try await store.locks() }

    public func releaseLock(workspace: String) async throws {
        guard let lock = try await store.releaseLock(workspace: workspace, now: clock()) else {
            throw RunwardenError(.lockNotFound, "workspace \"\(workspace)\" is not locked")
        }
        await hub.notify([.claims, .run(lock.runID)])
        logger.info("lock released by hand", metadata: ["run_id": "\(lock.runID)", "task_id": "\(lock.taskID)", "workspace": "\(workspace)"])
    }

    // MARK: - Webhooks

    /// A new subscription; its secret (given, or generated) is in the answer and nowhere else.
    public func createWebhook(_ definition: WebhookDefinition) async throws -> Webhook {
        let now = clock()
        let webhook = Webhook(
            id: Identifier.make(.wh, at: now), url: definition.url, events: definition.events,
            secret: definition.secret ?? WebhookSecret.generate(), description: definition.description, createdAt: now)
        try await store.createWebhook(webhook)
        logger.info("webhook created", metadata: ["webhook_id": "\(webhook.id)", "url": "\(webhook.url)"])
        return webhook
    }

    public func webhook(_ id: String) async throws -> Webhook {
        guard let webhook = try await store.webhook(id: id) else { throw RunwardenError.notFound(.webhook, id) }
        return webhook
    }

    public func webhooks(limit: Int, after cursor: String?) async throws -> (items: [Webhook], nextCursor: String?) {
        try await timed("list_webhooks") { try await store.webhooks(limit: limit, after: cursor) }
    }

    /// A subscription's delivery log, newest first; it outlives the subscription (SPEC §6),
    /// and an id that never had any deliveries is `404 webhook_not_found`.
    public func deliveries(webhookID: String, limit: Int, before cursor: String?) async throws -> (items: [Delivery], nextCursor: String?) {
        let page = try await timed("list_deliveries") {
            try await store.deliveries(webhookID: webhookID, limit: limit, before: cursor)
        }
        if page.items.isEmpty, cursor == nil { _ = try await webhook(webhookID) }
        return page
    }

    public func delivery(_ id: String) async throws -> Delivery {
        guard let delivery = try await timed("read_delivery", { try await store.delivery(id: id) }) else {
            throw RunwardenError.notFound(.delivery, id)
        }
        return delivery
    }

    public func deleteWebhook(_ id: String) async throws {
        guard try await store.deleteWebhook(id: id, now: clock()) else { throw RunwardenError.notFound(.webhook, id) }
    }

    public func retryDelivery(_ id: String) async throws {
        switch try await store.retryDelivery(id: id, now: clock()) {
        case .requeued: await hub.notify([.deliveries])
        case .unknown: throw RunwardenError.notFound(.delivery, id)
        case .inactive: throw RunwardenError(.webhookInactive, "delivery \(id) belongs to a subscription that was deleted or disabled")
        }
    }

    /// Re-queues an active subscription's failed deliveries; a disabled one sends nothing more.
    public func recoverDeliveries(webhookID: String, since: Timestamp) async throws -> Int {
        guard try await webhook(webhookID).isActive else {
            throw RunwardenError(.webhookInactive, "subscription \(webhookID) is disabled; create a new one to receive events again")
        }
        let count = try await store.recoverDeliveries(webhookID: webhookID, since: since, now: clock())
        await hub.notify([.deliveries])
        return count
    }

    // MARK: - Outbox (the webhook dispatcher's side)

    public func dueDeliveries(now: Timestamp, limit: Int) async throws -> [Delivery] {
        try await timed("due_deliveries") { try await store.dueDeliveries(now: now, limit: limit) }
    }

    public func dueDeliveries(url: String, now: Timestamp, limit: Int) async throws -> [Delivery] {
        try await timed("due_deliveries") { try await store.dueDeliveries(url: url, now: now, limit: limit) }
    }

    public func leaseDelivery(id: String, now: Timestamp, until: Timestamp) async throws -> DeliveryLease? {
        try await timed("lease_delivery") { try await store.leaseDelivery(id: id, now: now, until: until) }
    }

    public func recordAttempt(deliveryID: String, _ attempt: DeliveryAttempt, verdict: DeliveryVerdict) async throws {
        try await timed("record_attempt") { try await store.recordAttempt(deliveryID: deliveryID, attempt, verdict: verdict) }
    }

    // MARK: - Health and gauges

    /// Throws `StoreError.unavailable` when the database cannot answer.
    public func checkHealth() async throws { try await store.checkHealth() }

    public func statusCounts() async throws -> StatusCounts { try await store.statusCounts() }

    // MARK: - Retention

    /// Compacts up to `limit` runs that finished more than `retention` ago; returns how many.
    public func compact(olderThan retention: Duration, limit: Int) async throws -> Int {
        let now = clock()
        let cutoff = now.adding(saturatingMilliseconds: -retention.saturatingMilliseconds)
        return try await timed("compact") { try await store.compactRuns(finishedBefore: cutoff, limit: limit, now: now) }
    }

    /// Removes up to `limit` runner events older than `retention` (they belong to no run that
    /// could be compacted); returns how many.
    public func compactRunnerEvents(olderThan retention: Duration, limit: Int) async throws -> Int {
        let cutoff = clock().adding(saturatingMilliseconds: -retention.saturatingMilliseconds)
        return try await timed("compact_runner_events") { try await store.compactRunnerEvents(before: cutoff, limit: limit) }
    }

    /// Refuses to read events retention removed (SPEC §7): a compacted run's timeline
    /// (`events_expired`), or all runs' events after a cursor below an event it removed
    /// (`cursor_expired`; `after` 0 means "the oldest kept", never expired).
    public func checkEventsKept(runID: String?, after: Int64) async throws {
        if let runID {
            guard try await runSummary(runID).state.compactedAt == nil else {
                throw RunwardenError(
                    .eventsExpired, "the events of run \(runID) were removed by retention; its snapshot is kept at /v1/runs/\(runID)")
            }
        } else if after > 0 {
            let kept = try await store.retainedEvents()
            guard after >= kept.removedThrough else {
                let oldest = kept.oldestKept ?? kept.removedThrough + 1
                throw RunwardenError(
                    .cursorExpired, "events after \(after) were removed by retention",
                    details: [FieldError("after", "oldest available seq is \(oldest)")])
            }
        }
    }

    // MARK: - Liveness

    /// Gives every claimed task a fresh lease; called once when the server starts, because
    /// runners could not heartbeat while it was down (SPEC §1).
    public func renewLeases() async throws -> Int {
        try await store.renewLeases(now: clock())
    }

    /// Does what is due now: records runners silent for a lease (unless `runners` is false: the
    /// first lease after a start, when they could not reach us), reaps tasks whose runner stopped
    /// heartbeating for a lease, and times out tasks and runs past their `timeout_s`. Returns how
    /// many changes of runs it committed.
    @discardableResult
    public func reap(limit: Int = 500, runners: Bool = true) async throws -> Int {
        let now = clock()
        let leaseCutoff = now.adding(milliseconds: -Int64(leaseSeconds) * 1000)
        if runners { try await reapRunners(leaseCutoff: leaseCutoff, now: now, limit: limit) }
        var committedChanges = 0
        for work in try await store.dueWork(leaseCutoff: leaseCutoff, now: now, limit: limit) {
            let scope: ChangeScope = work.taskID.map { .task($0, dependents: true) } ?? .wholeRun
            let committed = try await store.update(runID: work.runID, scope: scope, now: now) { change in
                // Checked again inside the transaction: a heartbeat or a report may have come since.
                try Self.apply(work, to: &change, leaseCutoff: leaseCutoff)
                return change.isVisible
            }
            guard let committed, committed.value else { continue }
            committedChanges += 1
            await publish(committed)
            var metadata: Logger.Metadata = ["run_id": "\(work.runID)", "work": "\(work)"]
            if let taskID = work.taskID { metadata["task_id"] = "\(taskID)" }
            logger.notice("reaped", metadata: metadata)
        }
        return committedChanges
    }

    private static func apply(_ work: DueWork, to change: inout RunChange, leaseCutoff: Timestamp) throws {
        let run = change.run
        switch work {
        case .leaseExpired(_, let taskID):
            guard let index = run.taskIndex(id: taskID), let heartbeat = run.tasks[index].state.heartbeatAt,
                heartbeat < leaseCutoff
            else { return }
            change.leaseExpired(taskID: taskID)
        case .taskTimedOut(_, let taskID):
            guard let index = run.taskIndex(id: taskID), let deadline = run.tasks[index].timeoutDeadline, deadline <= change.now
            else { return }
            change.taskTimedOut(taskID: taskID)
        case .runTimedOut:
            guard let deadline = run.timeoutDeadline, deadline <= change.now else { return }
            change.runTimedOut()
        }
    }

    // MARK: - Helpers

    /// Wakes long-polls on the run and on all events, and claimers only when the change queued
    /// a task or freed a workspace (a claim that finds nothing new costs a request per waiter).
    /// Other runs changed in the same commit (concurrency keys: canceled or admitted) are woken too.
    private func publish<Value>(_ committed: Committed<Value>) async {
        var topics: [ChangeHub.Topic] = []
        for change in committed.allChanges {
            metrics.recordCommitted(change.events, run: change.record.run)
            runSpans?.enqueue(RunSpan.finished(by: change))
            topics.append(.run(change.record.run.id))
            if !change.events.isEmpty, !topics.contains(.events) { topics.append(.events) }
            // The dispatcher reads the outbox when there is something new in it, not at every event.
            if change.queuedDeliveries, !topics.contains(.deliveries) { topics.append(.deliveries) }
            if change.freesWork, !topics.contains(.claims) { topics.append(.claims) }
        }
        await hub.notify(topics)
    }

    /// Runs one store call, recording how long it took under `operation` in `/metrics`.
    func timed<Value>(_ operation: String, _ body: () async throws -> Value) async rethrows -> Value {
        let started = ContinuousClock.now
        defer { metrics.recordStore(operation, duration: ContinuousClock.now - started) }
        return try await body()
    }
}
