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
        // Sent with the statement that numbers the events (one round trip for both); nothing
        // below reads the rows they write.
        let writes = try await rowWrites(tasks: plan.tasks, run: plan.writesRun ? plan.run : nil, tx)
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
        if plan.writesRun || !plan.tasks.isEmpty || !plan.events.isEmpty { tx.notify(.run(plan.run.id)) }
        let record = RunRecord(
            run: plan.run, lockHolders: try await lockHolders(tx, for: plan.run),
            concurrencyHolders: try await concurrencyHolders(tx, for: plan.run))
        let (events, queuedDeliveries) = try await commitEvents(plan.events, of: record, now: change.now, tx, after: writes)
        return Committed(
            value: value, record: record, events: events, freesWork: plan.freesWork, endedAttempts: plan.endedAttempts,
            queuedDeliveries: queuedDeliveries)
    }

    static func writeRunState(_ run: Run, _ tx: PostgresTransaction) async throws {
        try await writeRows(tasks: [], run: run, tx)
    }

    /// The most task rows one statement updates: 8 values each, well below PostgreSQL's 65,535
    /// bind parameters.
    static let tasksPerStatement = 500

    /// Updates the changed task rows and the run's row (when given) in as few statements as
    /// there are batches of `tasksPerStatement` — one for a usual change — rather than one per
    /// row: each `UPDATE` is a common table expression of one statement, so a change pays one
    /// round trip, not one per row.
    static func writeRows(tasks: [RunTask], run: Run?, _ tx: PostgresTransaction) async throws {
        try await rowWrites(tasks: tasks, run: run, tx).execute(tx)
    }

    /// The updates of `writeRows`, all but the last batch sent; the last batch — the whole of a
    /// usual change — is returned, to ride on the statement that numbers the change's events.
    static func rowWrites(tasks: [RunTask], run: Run?, _ tx: PostgresTransaction) async throws -> RowWrites {
        var batches = stride(from: 0, to: tasks.count, by: tasksPerStatement).map {
            Array(tasks[$0..<min($0 + tasksPerStatement, tasks.count)])
        }
        if batches.isEmpty { batches = [[]] }
        var writes = RowWrites()
        for (index, batch) in batches.enumerated() {
            if index > 0 { try await writes.execute(tx) }
            writes = RowWrites()
            func placeholder<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value?) throws -> String {
                try writes.values.marker(value)
            }
            for task in batch {
                let columns = try [
                    "status = " + placeholder(task.status.rawValue), "runner = " + placeholder(task.state.runner),
                    "queued_at = " + placeholder(task.state.queuedAt?.milliseconds),
                    "heartbeat_at = " + placeholder(task.state.heartbeatAt?.milliseconds),
                    "deadline_at = " + placeholder(task.timeoutDeadline?.milliseconds), "claim_id = " + placeholder(task.pendingClaimID),
                    "state = " + placeholder(try JSONColumn.taskStates.encode(task.state, row: task.id)),
                ]
                writes.statements.append("UPDATE tasks SET \(columns.joined(separator: ", ")) WHERE id = \(try placeholder(task.id))")
            }
            // The run's row goes with the last batch: the statement that ends the change.
            if index == batches.count - 1, let run {
                let columns = try [
                    "status = " + placeholder(run.status.rawValue), "version = " + placeholder(run.state.version),
                    "deadline_at = " + placeholder(run.timeoutDeadline?.milliseconds),
                    "finished_at = " + placeholder(run.state.finishedAt?.milliseconds),
                    "concurrency_slot = " + placeholder(run.state.concurrencySlot?.column),
                    "state = " + placeholder(try JSONColumn.runStates.encode(run.state, row: run.id)),
                ]
                writes.statements.append("UPDATE runs SET \(columns.joined(separator: ", ")) WHERE id = \(try placeholder(run.id))")
            }
        }
        return writes
    }

    /// Data-modifying statements (no `RETURNING`) not sent yet, and their bound values: sent on
    /// their own (`execute`), or as common table expressions before another statement
    /// (`prefix`) — one round trip for both. Every such expression runs once, referenced or not.
    struct RowWrites {
        var statements: [String] = []
        var values = BoundValues()

        /// `w0 AS (…)`, … : the statements as common table expressions.
        var ctes: [String] { statements.enumerated().map { "w\($0.offset) AS (\($0.element))" } }

        /// `WITH w0 AS (…), … ` to put before a statement that binds nothing of its own; empty
        /// when there is nothing to write.
        var prefix: String { statements.isEmpty ? "" : "WITH " + ctes.joined(separator: ", ") + " " }

        func execute(_ tx: PostgresTransaction) async throws {
            guard let last = statements.last else { return }
            let ctes = RowWrites(statements: Array(statements.dropLast()))
            // Built from constant text and `$n` markers only; every value is bound.
            try await tx.execute(PostgresQuery(unsafeSQL: ctes.prefix + last, binds: values.binds))
        }
    }

    /// Appends the numbered events and their outbox rows (`Outbox.rows`), after `writes`.
    ///
    /// Every lock the change waits for is taken before this: the run's row, and the rows `writes`
    /// updates (locked when they were read, or new), so the `seq` fence lock is held only for
    /// the writes, the inserts and the commit.
    static func commitEvents(
        _ drafts: [ChangePlan.NumberedDraft], of record: RunRecord, now: Timestamp, _ tx: PostgresTransaction,
        after writes: RowWrites = RowWrites()
    ) async throws -> (events: [Event], queuedDeliveries: Bool) {
        guard !drafts.isEmpty else {
            try await writes.execute(tx)
            return ([], false)
        }
        guard drafts.count <= BoundValues.rowsPerStatement else {
            let (events, subscriptions) = try await numbered(drafts, tx, after: writes)
            let deliveries = Outbox.rows(
                for: events, of: record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders,
                subscriptions: subscriptions, now: now)
            try await insert(events, deliveries: deliveries, now: now, tx)
            return (events, !deliveries.isEmpty)
        }
        let (events, subscriptions) = try await numberedAndInserted(drafts, tx, after: writes)
        let deliveries = Outbox.rows(
            for: events, of: record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders,
            subscriptions: subscriptions, now: now)
        if !deliveries.isEmpty {
            tx.notify(.deliveries)
            if deliveries.count <= BoundValues.rowsPerStatement {
                var values = BoundValues()
                for row in deliveries { try addDelivery(&values, row, now: now) }
                try await tx.executeAnnouncing([deliveriesInsert + " VALUES " + values.takeRows()], binds: values.binds)
            } else {
                try await tx.insert(deliveriesInsert, deliveries) { values, row in try addDelivery(&values, row, now: now) }
            }
        }
        return (events, !deliveries.isEmpty)
    }

    /// As `numbered`, and in the same statement the events inserted and the transaction's
    /// notifications sent: the writes, the numbers, the events and the announcement of a usual
    /// change in one round trip. (Outbox rows need the numbers first: a second statement,
    /// only when a subscription is active.) The events get the numbers in ascending order, as
    /// `numbered` gives them.
    static func numberedAndInserted(
        _ drafts: [ChangePlan.NumberedDraft], _ tx: PostgresTransaction, after writes: RowWrites
    ) async throws -> (events: [Event], subscriptions: [Outbox.Subscription]) {
        tx.notify(.events)
        var values = writes.values
        for (index, item) in drafts.enumerated() {
            try values.add(index + 1)
            try addEventColumns(&values, item.draft, runSeq: item.runSeq)
            values.endRow()
        }
        let rows = values.takeRows()
        let channel = try values.marker(PostgresChangeTopic.channel)
        let topics = try values.marker(tx.takeTopics())
        let ctes =
            writes.ctes + [
                "numbered AS MATERIALIZED (\(numbering(drafts.count)))",
                "ranked AS (SELECT seq, row_number() OVER (ORDER BY seq) AS k FROM numbered)",
                """
                inserted AS (\(eventsInsert)
                  SELECT ranked.seq, v.id, v.run_id, v.run_seq::bigint, v.task_id, v.type, v.status, v.previous_status,
                         v.timestamp::bigint, v.attempt::bigint, v.error, v.runner, v.approval
                  FROM ranked JOIN (VALUES \(rows)) AS v(k, id, run_id, run_seq, task_id, type, status,
                    previous_status, timestamp, attempt, error, runner, approval) ON v.k = ranked.k)
                """,
                "notified AS MATERIALIZED (SELECT count(pg_notify(\(channel), topic)) AS sent FROM unnest(\(topics)::text[]) AS topic)",
            ]
        // Constant text, numbers and `$n` markers only; every value is bound.
        let sql = "WITH " + ctes.joined(separator: ", ") + " SELECT numbered.seq, numbered.list FROM numbered, notified"
        let (seqs, subscriptions) = try numbers(try await tx.rows(PostgresQuery(unsafeSQL: sql, binds: values.binds)))
        return (zip(drafts, seqs).map { item, seq in Event(seq: seq, runSeq: item.runSeq, draft: item.draft) }, subscriptions)
    }

    /// Appends `runner.*` events and their outbox rows (`Outbox.runnerRows`), as `commitEvents`
    /// does a run's: the `seq` lock is the last one taken.
    static func commitRunnerEvents(_ drafts: [EventDraft], now: Timestamp, _ tx: PostgresTransaction) async throws -> [Event] {
        guard !drafts.isEmpty else { return [] }
        let (events, subscriptions) = try await numbered(drafts.map(ChangePlan.NumberedDraft.runner), tx)
        try await insert(events, deliveries: Outbox.runnerRows(for: events, subscriptions: subscriptions, now: now), now: now, tx)
        return events
    }

    /// The drafts numbered with the global `seq` (`drawSeqs`: fenced, see `PostgresRunStore+Seq`),
    /// and the active subscriptions, read in the same round trip.
    static func numbered(
        _ drafts: [ChangePlan.NumberedDraft], _ tx: PostgresTransaction, after writes: RowWrites = RowWrites()
    ) async throws -> (events: [Event], subscriptions: [Outbox.Subscription]) {
        let (seqs, subscriptions) = try await drawSeqs(drafts.count, tx, after: writes)
        return (zip(drafts, seqs).map { item, seq in Event(seq: seq, runSeq: item.runSeq, draft: item.draft) }, subscriptions)
    }

    static let eventsInsert = """
        INSERT INTO events (seq, id, run_id, run_seq, task_id, type, status, previous_status, timestamp, attempt, error, runner, approval)
        """
    static let deliveriesInsert = """
        INSERT INTO deliveries (id, webhook_id, run_id, event_id, event_seq, type, url, payload, status, attempts, next_attempt_at,
                                created_at)
        """

    /// Inserts the events and their outbox rows. When they fit one statement — a usual change —
    /// that statement also sends the transaction's notifications: one round trip where there
    /// were three.
    static func insert(_ events: [Event], deliveries: [Outbox.Row], now: Timestamp, _ tx: PostgresTransaction) async throws {
        tx.notify(.events)
        if !deliveries.isEmpty { tx.notify(.deliveries) }
        guard events.count + deliveries.count <= BoundValues.rowsPerStatement else {
            try await tx.insert(eventsInsert, events, addEvent)
            try await tx.insert(deliveriesInsert, deliveries) { values, row in try addDelivery(&values, row, now: now) }
            return
        }
        var values = BoundValues()
        for event in events { try addEvent(&values, event) }
        var statements = [eventsInsert + " VALUES " + values.takeRows()]
        for row in deliveries { try addDelivery(&values, row, now: now) }
        if !deliveries.isEmpty { statements.append(deliveriesInsert + " VALUES " + values.takeRows()) }
        try await tx.executeAnnouncing(statements, binds: values.binds)
    }

    static func addEvent(_ values: inout BoundValues, _ event: Event) throws {
        try values.add(event.seq)
        try addEventColumns(&values, event.draft, runSeq: event.runSeq)
        values.endRow()
    }

    /// The values of `eventsInsert`'s columns after `seq`. (A `VALUES` list outside an `INSERT`
    /// types a column whose every value is NULL as text: its reader casts the numbers.)
    static func addEventColumns(_ values: inout BoundValues, _ draft: EventDraft, runSeq: Int?) throws {
        try values.add(draft.id)
        try values.add(draft.runID)
        try values.add(runSeq)
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

    static func addDelivery(_ values: inout BoundValues, _ row: Outbox.Row, now: Timestamp) throws {
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
        values.endRow()
    }
}
