import Foundation
import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Writing a change: the run's diff, its numbered events and its outbox rows, in the caller's
/// transaction, which already holds the run's row lock.
extension PostgresRunStore {
    /// Writes what `change` changed — changed tasks, lock rows, run state, numbered events,
    /// deliveries — and asks for the matching wake-ups.
    static func save<Value: Sendable>(
        _ change: RunChange, original: Run, value: Value, _ tx: PostgresTransaction
    ) async throws -> Committed<Value> {
        var run = change.committed
        let now = change.now
        var changed = run.state != original.state
        for (task, before) in zip(run.tasks, original.tasks) where task.state != before.state {
            changed = true
            try await tx.execute(
                """
                UPDATE tasks SET status = \(task.status.rawValue), runner = \(task.state.runner),
                    queued_at = \(task.state.queuedAt?.milliseconds), heartbeat_at = \(task.state.heartbeatAt?.milliseconds),
                    deadline_at = \(task.timeoutDeadline?.milliseconds), claim_id = \(task.pendingClaimID),
                    state = \(try JSONColumn.taskStates.encode(task.state, row: task.id))
                WHERE id = \(task.id)
                """)
            if task.status == .queued, before.status != .queued { tx.notify(.claims) }
            if let workspace = task.spec.workspace, task.state.holdsLock != before.state.holdsLock {
                if task.state.holdsLock {
                    // The primary key on `workspace` refuses a second holder (23505): a claim
                    // racing another for the same workspace rolls back and looks again.
                    try await tx.execute(
                        """
                        INSERT INTO locks (workspace, task_id, run_id, runner, acquired_at)
                        VALUES (\(workspace), \(task.id), \(run.id), \(task.state.runner ?? ""), \(now.milliseconds))
                        """)
                } else {
                    try await tx.execute("DELETE FROM locks WHERE workspace = \(workspace) AND task_id = \(task.id)")
                    tx.notify(.claims)
                }
            }
        }
        let drafts = number(change.events, in: &run)
        if run.state != original.state { try await writeRunState(run, tx) }
        if changed || !drafts.isEmpty { tx.notify(.run(run.id)) }
        let record = RunRecord(run: run, lockHolders: try await lockHolders(tx, for: run))
        let events = try await commitEvents(drafts, of: record, now: now, tx)
        return Committed(value: value, record: record, events: events)
    }

    /// Gives each draft the run's next `run_seq` (the run's own counter, kept in its state).
    static func number(_ drafts: [EventDraft], in run: inout Run) -> [(draft: EventDraft, runSeq: Int)] {
        drafts.map { draft in
            run.state.lastRunSeq += 1
            return (draft, run.state.lastRunSeq)
        }
    }

    static func writeRunState(_ run: Run, _ tx: PostgresTransaction) async throws {
        try await tx.execute(
            """
            UPDATE runs SET status = \(run.status.rawValue), version = \(run.state.version),
                deadline_at = \(run.timeoutDeadline?.milliseconds), state = \(try JSONColumn.runStates.encode(run.state, row: run.id))
            WHERE id = \(run.id)
            """)
    }

    /// Appends the numbered events and their outbox rows: one delivery per event and interested
    /// destination — every active subscription whose filter matches, and the run's
    /// `callback_url` for `run.*` events — with the run as of this commit.
    ///
    /// Everything that may wait on another transaction's row lock happens before this (the
    /// subscriptions are read first too), so the `seq` counter lock is the last lock taken and
    /// is held only for the inserts and the commit.
    static func commitEvents(
        _ drafts: [(draft: EventDraft, runSeq: Int)], of record: RunRecord, now: Timestamp, _ tx: PostgresTransaction
    ) async throws -> [Event] {
        guard !drafts.isEmpty else { return [] }
        let destinations = try await deliveryDestinations(for: drafts.map(\.draft), of: record.run, tx)
        tx.notify(.events)
        if destinations.contains(where: { !$0.isEmpty }) { tx.notify(.deliveries) }

        let events = try await appendEvents(drafts, tx)
        var rows: [(event: Event, target: Destination, payload: Data)] = []
        for (event, targets) in zip(events, destinations) where !targets.isEmpty {
            let payload = JSONValueEncoder.data(WebhookPayload(event, run: record.run, lockHolders: record.lockHolders))
            rows += targets.map { (event: event, target: $0, payload: payload) }
        }
        guard !rows.isEmpty else { return events }
        try await tx.insert(
            """
            INSERT INTO deliveries (id, webhook_id, run_id, event_id, event_seq, type, url, payload, status,
                                    attempts, next_attempt_at, created_at)
            """, rows
        ) { values, row in
            try values.add(Identifier.make(.dlv, at: now))
            try values.add(row.target.webhookID)
            try values.add(row.event.draft.runID)
            try values.add(row.event.draft.id)
            try values.add(row.event.seq)
            try values.add(row.event.draft.type)
            try values.add(row.target.url)
            try values.add(row.payload)
            try values.add(DeliveryStatus.pending.rawValue)
            try values.add("[]")
            try values.add(now.milliseconds)
            try values.add(now.milliseconds)
        }
        return events
    }

    /// Numbers the events with the global `seq` and inserts them.
    ///
    /// `seq` must grow in commit order: a reader that has seen `seq` N reads on with
    /// `after=N`, so an event committed later with a smaller number would be skipped for good.
    /// A sequence (BIGSERIAL) hands out numbers at insert time, not commit time, so two nodes
    /// could commit 8 before 7. Instead the number comes from the `counters` row `seq`, whose
    /// row lock (taken by this UPDATE) is held until this transaction commits: every
    /// transaction that appends events queues on it, so numbers are handed out and made
    /// visible strictly one transaction after another (PostgreSQL makes a commit visible
    /// before it releases its locks). Transactions that append no event never touch the row.
    /// The counter is taken last in the transaction (`commitEvents`), so it is held briefly and
    /// its holder never waits for another lock — no deadlock can form around it.
    static func appendEvents(_ drafts: [(draft: EventDraft, runSeq: Int)], _ tx: PostgresTransaction) async throws -> [Event] {
        guard !drafts.isEmpty else { return [] }
        guard
            let last = try await tx.rows(
                "UPDATE counters SET value = value + \(Int64(drafts.count)) WHERE name = 'seq' RETURNING value"
            ).first?.decode(Int64.self)
        else { throw StoreError.unavailable("the Runwarden schema is incomplete: counter 'seq' is missing") }
        let first = last - Int64(drafts.count) + 1
        let events = drafts.enumerated().map { offset, item in
            Event(seq: first + Int64(offset), runSeq: item.runSeq, draft: item.draft)
        }
        try await tx.insert(
            """
            INSERT INTO events (seq, id, run_id, run_seq, task_id, type, status, previous_status, timestamp, attempt, error)
            """, events
        ) { values, event in
            let draft = event.draft
            try values.add(event.seq)
            try values.add(draft.id)
            try values.add(draft.runID)
            try values.add(event.runSeq)
            try values.add(draft.taskID)
            try values.add(draft.type)
            try values.add(draft.status)
            try values.add(draft.previousStatus)
            try values.add(draft.timestamp.milliseconds)
            try values.add(draft.attempt)
            try values.add(draft.error.map { String(decoding: JSONValueEncoder.data($0), as: UTF8.self) })
        }
        return events
    }

    /// No secret: the lease reads it from the subscription or the run.
    struct Destination {
        var webhookID: String?
        var url: String
    }

    /// For each draft, where it must be delivered.
    static func deliveryDestinations(for drafts: [EventDraft], of run: Run, _ tx: PostgresTransaction) async throws -> [[Destination]] {
        let subscriptions = try await tx.rows("SELECT id, url, events FROM webhooks WHERE active ORDER BY id").map { row in
            let (id, url, events) = try row.decode((String, String, String).self)
            return (id: id, url: url, patterns: try JSONColumn.decode([String].self, events))
        }
        return drafts.map { draft in
            var targets = subscriptions.filter { EventFilter.matches($0.patterns, type: draft.type) }
                .map { Destination(webhookID: $0.id, url: $0.url) }
            if let callback = run.spec.callbackURL, draft.type.hasPrefix("run.") {
                targets.append(Destination(webhookID: nil, url: callback))
            }
            return targets
        }
    }
}
