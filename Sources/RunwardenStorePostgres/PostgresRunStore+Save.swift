import Foundation
import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Writing a change: the run's diff, its numbered events and its outbox rows, in the caller's
/// transaction, which already holds the run's row lock.
extension PostgresRunStore {
    /// Executes the plan of `change` — changed tasks, lock rows, run state, numbered events,
    /// deliveries — and asks for the matching wake-ups.
    static func save<Value: Sendable>(
        _ change: RunChange, original: Run, value: Value, _ tx: PostgresTransaction
    ) async throws -> Committed<Value> {
        let plan = ChangePlan(change, original: original)
        for task in plan.tasks {
            try await tx.execute(
                """
                UPDATE tasks SET status = \(task.status.rawValue), runner = \(task.state.runner),
                    queued_at = \(task.state.queuedAt?.milliseconds), heartbeat_at = \(task.state.heartbeatAt?.milliseconds),
                    deadline_at = \(task.timeoutDeadline?.milliseconds), claim_id = \(task.pendingClaimID),
                    state = \(try JSONColumn.taskStates.encode(task.state, row: task.id))
                WHERE id = \(task.id)
                """)
        }
        for lock in plan.locksTaken {
            // The primary key on `workspace` refuses a second holder (23505): a claim racing
            // another for the same workspace rolls back and looks again.
            try await tx.execute(
                """
                INSERT INTO locks (workspace, task_id, run_id, runner, acquired_at)
                VALUES (\(lock.workspace), \(lock.taskID), \(lock.runID), \(lock.runner), \(lock.acquiredAt.milliseconds))
                """)
        }
        for lock in plan.locksFreed {
            try await tx.execute("DELETE FROM locks WHERE workspace = \(lock.workspace) AND task_id = \(lock.taskID)")
        }
        if plan.freesWork { tx.notify(.claims) }
        if plan.writesRun { try await writeRunState(plan.run, tx) }
        if plan.writesRun || !plan.tasks.isEmpty || !plan.events.isEmpty { tx.notify(.run(plan.run.id)) }
        let record = RunRecord(
            run: plan.run, lockHolders: try await lockHolders(tx, for: plan.run),
            concurrencyHolders: try await concurrencyHolders(tx, for: plan.run))
        let events = try await commitEvents(plan.events, of: record, now: change.now, tx)
        return Committed(value: value, record: record, events: events, freesWork: plan.freesWork)
    }

    static func writeRunState(_ run: Run, _ tx: PostgresTransaction) async throws {
        try await tx.execute(
            """
            UPDATE runs SET status = \(run.status.rawValue), version = \(run.state.version),
                deadline_at = \(run.timeoutDeadline?.milliseconds), finished_at = \(run.state.finishedAt?.milliseconds),
                concurrency_slot = \(run.state.concurrencySlot?.column),
                state = \(try JSONColumn.runStates.encode(run.state, row: run.id))
            WHERE id = \(run.id)
            """)
    }

    /// Appends the numbered events and their outbox rows (`Outbox.rows`).
    ///
    /// Everything that may wait on another transaction's row lock happens before this (the
    /// subscriptions are read first too), so the `seq` counter lock is the last lock taken and
    /// is held only for the inserts and the commit.
    static func commitEvents(
        _ drafts: [ChangePlan.NumberedDraft], of record: RunRecord, now: Timestamp, _ tx: PostgresTransaction
    ) async throws -> [Event] {
        guard !drafts.isEmpty else { return [] }
        let subscriptions = try await activeSubscriptions(tx)
        tx.notify(.events)
        let events = try await appendEvents(drafts, tx)
        try await insertDeliveries(
            Outbox.rows(
                for: events, of: record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders,
                subscriptions: subscriptions, now: now), now: now, tx)
        return events
    }

    /// Appends `runner.*` events and their outbox rows (`Outbox.runnerRows`), as `commitEvents`
    /// does a run's: the `seq` lock is the last one taken.
    static func commitRunnerEvents(_ drafts: [EventDraft], now: Timestamp, _ tx: PostgresTransaction) async throws -> [Event] {
        guard !drafts.isEmpty else { return [] }
        let subscriptions = try await activeSubscriptions(tx)
        tx.notify(.events)
        let events = try await appendEvents(drafts.map(ChangePlan.NumberedDraft.runner), tx)
        try await insertDeliveries(Outbox.runnerRows(for: events, subscriptions: subscriptions, now: now), now: now, tx)
        return events
    }

    static func activeSubscriptions(_ tx: PostgresTransaction) async throws -> [Outbox.Subscription] {
        try await tx.rows("SELECT id, url, events FROM webhooks WHERE active ORDER BY id").map { row in
            let (id, url, events) = try row.decode((String, String, String).self)
            return Outbox.Subscription(id: id, url: url, patterns: try JSONColumn.decode([String].self, events))
        }
    }

    static func insertDeliveries(_ rows: [Outbox.Row], now: Timestamp, _ tx: PostgresTransaction) async throws {
        guard !rows.isEmpty else { return }
        tx.notify(.deliveries)
        try await tx.insert(
            """
            INSERT INTO deliveries (id, webhook_id, run_id, event_id, event_seq, type, url, payload, status,
                                    attempts, next_attempt_at, created_at)
            """, rows
        ) { values, row in
            try values.add(row.id)
            try values.add(row.webhookID)
            try values.add(row.lane)
            try values.add(row.event.draft.id)
            try values.add(row.event.seq)
            try values.add(row.event.draft.type)
            try values.add(row.url)
            try values.add(row.payload)
            try values.add(DeliveryStatus.pending.rawValue)
            try values.add("[]")
            try values.add(now.milliseconds)
            try values.add(now.milliseconds)
        }
    }

    /// Numbers the events with the global `seq` (`drawSeqs`: fenced, see `PostgresRunStore+Seq`)
    /// and inserts them.
    static func appendEvents(_ drafts: [ChangePlan.NumberedDraft], _ tx: PostgresTransaction) async throws -> [Event] {
        guard !drafts.isEmpty else { return [] }
        let seqs = try await drawSeqs(drafts.count, tx)
        let events = zip(drafts, seqs).map { item, seq in Event(seq: seq, runSeq: item.runSeq, draft: item.draft) }
        try await tx.insert(
            """
            INSERT INTO events (seq, id, run_id, run_seq, task_id, type, status, previous_status, timestamp, attempt, error, runner,
                                approval)
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
            try values.add(draft.runner)
            try values.add(try draft.approval.map(JSONColumn.encode))
        }
        return events
    }
}
