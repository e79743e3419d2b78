import Foundation
import RunwardenCore

/// What one `RunChange` writes, worked out once for every backend: the task rows that change,
/// the workspace locks taken and freed, the run's row, and the events numbered with the run's
/// `run_seq`. A backend executes the plan in its transaction and decides nothing itself; what
/// it costs grows with what the change changed, not with the run's width.
public struct ChangePlan: Sendable {
    /// The run as committed (`lastRunSeq` past the new events), holding the tasks the change loaded.
    public let run: Run
    public let writesRun: Bool
    /// Tasks whose row changes, in run order.
    public let tasks: [RunTask]
    public let locksTaken: [WorkspaceLock]
    public let locksFreed: [(workspace: String, taskID: String)]
    public let events: [NumberedDraft]
    /// A task became `queued` or a workspace was freed: a claimer may now find work.
    public let freesWork: Bool
    /// Attempts the change ended, for their trace spans.
    public let endedAttempts: [EndedAttempt]

    /// An event ready to append: `runSeq` is nil for a runner's event (`runner(_:)`).
    public struct NumberedDraft: Sendable {
        public let draft: EventDraft
        public let runSeq: Int?
        public init(draft: EventDraft, runSeq: Int?) {
            self.draft = draft
            self.runSeq = runSeq
        }

        /// A `runner.*` event: no run, so no `run_seq`.
        public static func runner(_ draft: EventDraft) -> NumberedDraft { NumberedDraft(draft: draft, runSeq: nil) }
    }

    public init(_ change: RunChange, original: Run) {
        var run = change.committed
        var tasks: [RunTask] = []
        var taken: [WorkspaceLock] = []
        var freed: [(workspace: String, taskID: String)] = []
        var freesWork = false
        var ended: [EndedAttempt] = []
        // The change has the tasks it loaded, in the order it loaded them.
        for (task, before) in zip(run.tasks, original.tasks) where task.state != before.state {
            tasks.append(task)
            if let attempt = EndedAttempt.between(before: before, after: task, now: change.now) { ended.append(attempt) }
            if task.status == .queued, before.status != .queued { freesWork = true }
            guard let workspace = task.spec.workspace, task.state.holdsLock != before.state.holdsLock else { continue }
            if task.state.holdsLock {
                taken.append(
                    WorkspaceLock(workspace: workspace, taskID: task.id, runID: run.id, runner: task.state.runner ?? "", acquiredAt: change.now))
            } else {
                freed.append((workspace, task.id))
                freesWork = true
            }
        }
        events = Self.number(change.events, in: &run)
        writesRun = run.state != original.state
        self.run = run
        self.tasks = tasks
        locksTaken = taken
        locksFreed = freed
        self.freesWork = freesWork
        endedAttempts = ended
    }

    /// Gives each draft the run's next `run_seq` (the run's own counter, kept in its state).
    public static func number(_ drafts: [EventDraft], in run: inout Run) -> [NumberedDraft] {
        drafts.map { draft in
            run.state.lastRunSeq += 1
            return NumberedDraft(draft: draft, runSeq: run.state.lastRunSeq)
        }
    }
}

/// The webhook outbox rows of committed events: one delivery per event and interested
/// destination — every active subscription whose filter matches, and the run's `callback_url`
/// for `run.*` events. No secret is copied in: the lease reads it from the subscription or run.
public enum Outbox {
    public struct Subscription: Sendable {
        public let id: String
        public let url: String
        public let patterns: [String]
        public init(id: String, url: String, patterns: [String]) {
            self.id = id
            self.url = url
            self.patterns = patterns
        }
    }

    public struct Row: Sendable {
        public let id: String
        public let webhookID: String?
        public let url: String
        public let event: Event
        public let payload: Data
        /// The `run_id` column: the event's run, or its runner's lane (`lane(runner:)`).
        public let lane: String
    }

    /// The `run_id` column of a runner event's deliveries: no run, but a lane of that runner's
    /// own, so its events reach a receiver one after another, as a run's do. Run ids start
    /// with `run_`, so the two never meet.
    public static func lane(runner: String) -> String { "runner:" + runner }

    /// The run a delivery's `run_id` column names; nil for a runner event's lane.
    public static func runID(ofLane lane: String) -> String? { lane.hasPrefix("runner:") ? nil : lane }

    /// The outbox rows of `runner.*` events (SPEC §8): one per active subscription asking for
    /// the event's type, with a payload of the event alone.
    public static func runnerRows(for events: [Event], subscriptions: [Subscription], now: Timestamp) -> [Row] {
        var rows: [Row] = []
        for event in events {
            guard let runner = event.draft.runner else { continue }
            let interested = subscriptions.filter { EventFilter.matches($0.patterns, type: event.draft.type) }
            guard !interested.isEmpty else { continue }
            let payload = JSONValueEncoder.data(RunnerWebhookPayload(event))
            for subscription in interested {
                rows.append(
                    Row(
                        id: Identifier.make(.dlv, at: now), webhookID: subscription.id, url: subscription.url, event: event,
                        payload: payload, lane: lane(runner: runner)))
            }
        }
        return rows
    }

    /// One thin payload per event (SPEC §7: the run without its tasks, and the event's task),
    /// shared by all of that event's destinations.
    public static func rows(
        for events: [Event], of run: Run, lockHolders: [String: String], concurrencyHolders: [String] = [],
        subscriptions: [Subscription], now: Timestamp
    ) -> [Row] {
        var rows: [Row] = []
        for event in events {
            let type = event.draft.type
            var destinations = subscriptions.filter { EventFilter.matches($0.patterns, type: type) }.map { (webhookID: Optional($0.id), url: $0.url) }
            if let callback = run.spec.callbackURL, type.hasPrefix("run.") { destinations.append((nil, callback)) }
            guard !destinations.isEmpty else { continue }
            let payload = JSONValueEncoder.data(
                WebhookPayload(event, run: run, lockHolders: lockHolders, concurrencyHolders: concurrencyHolders))
            for destination in destinations {
                rows.append(
                    Row(
                        id: Identifier.make(.dlv, at: now), webhookID: destination.webhookID, url: destination.url, event: event,
                        payload: payload, lane: run.id))
            }
        }
        return rows
    }
}
