import Foundation
import GRDB
import RunwardenCore
import RunwardenStore

/// Row reading and writing shared by the store's operations; every function runs inside the
/// caller's transaction.
extension SQLiteRunStore {
    static func loadRun(_ db: Database, runID: String) throws -> Run? {
        try loadRun(db, runID: runID, scope: .wholeRun)
    }

    static let taskColumns = "id, spec, state, heartbeat_at, dependents"

    /// The run's row alone; its task counts counted in SQL for rows written before they were kept.
    static func loadSummary(_ db: Database, runID: String) throws -> Run? {
        guard let run = try loadRunRow(db, runID: runID) else { return nil }
        guard run.state.taskCounts == nil else { return run }
        var summary = run
        var counts = [TaskStatus: Int]()
        for row in try Row.fetchAll(
            db.cachedStatement(sql: "SELECT status, count(*) AS n FROM tasks WHERE run_id = ? GROUP BY status"), arguments: [runID])
        {
            if let status = TaskStatus(rawValue: row["status"]) { counts[status] = row["n"] }
        }
        summary.state.taskCounts = TaskCounts(counts)
        return summary
    }

    /// The run's own row and the tasks `scope` names, in run order.
    static func loadRun(_ db: Database, runID: String, scope: ChangeScope) throws -> Run? {
        guard let run = try loadRunRow(db, runID: runID) else { return nil }
        let rows: [Row]
        switch scope {
        case .wholeRun:
            rows = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(taskColumns) FROM tasks WHERE run_id = ? ORDER BY position"), arguments: [runID])
        case .task(let taskID, let withDependents):
            let statement = try db.cachedStatement(sql: "SELECT \(taskColumns) FROM tasks WHERE id = ? AND run_id = ?")
            guard let target = try Row.fetchOne(statement, arguments: [taskID, runID]) else {
                rows = []
                break
            }
            let dependents: String = target["dependents"]
            if withDependents, dependents != "[]" {
                rows = try Row.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT \(taskColumns) FROM tasks
                            WHERE id = ? OR id IN (SELECT value FROM json_each(?)) ORDER BY position
                            """),
                    arguments: [taskID, dependents])
            } else {
                rows = [target]
            }
        }
        return Run(id: runID, spec: run.spec, state: run.state, tasks: try rows.map { try task($0, runID: runID) })
    }

    /// The run's own row, without tasks.
    static func loadRunRow(_ db: Database, runID: String) throws -> Run? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT spec, state FROM runs WHERE id = ?"), arguments: [runID])
        else {
            return nil
        }
        return Run(
            id: runID, spec: try JSONColumn.runSpecs.decode(row["spec"], row: runID),
            state: try JSONColumn.runStates.decode(row["state"], row: runID), tasks: [])
    }

    static func task(_ row: Row, runID: String) throws -> RunTask {
        let id: String = row["id"]
        var state = try JSONColumn.taskStates.decode(row["state"], row: id)
        state.heartbeatAt = Timestamp(column: row["heartbeat_at"])
        return RunTask(
            id: id, runID: runID, spec: try JSONColumn.taskSpecs.decode(row["spec"], row: id), state: state,
            dependents: try JSONColumn.dependents(row["dependents"]))
    }

    static func loadRecord(_ db: Database, runID: String) throws -> RunRecord? {
        guard let run = try loadRun(db, runID: runID) else { return nil }
        return RunRecord(run: run, lockHolders: try lockHolders(db, for: run), concurrencyHolders: try concurrencyHolders(db, for: run))
    }

    static func lockHolders(_ db: Database, for run: Run) throws -> [String: String] {
        let workspaces = Array(Set(run.tasks.compactMap(\.spec.workspace)))
        guard !workspaces.isEmpty else { return [:] }
        let placeholders = Array(repeating: "?", count: workspaces.count).joined(separator: ", ")
        var holders: [String: String] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT workspace, task_id FROM locks WHERE workspace IN (\(placeholders))",
            arguments: StatementArguments(workspaces))
        {
            holders[row["workspace"]] = row["task_id"]
        }
        return holders
    }

    /// The first `queued` task in claim order (highest priority, then oldest) whose workspace is
    /// free and whose labels the runner has: the first of the heads of the label sets the runner
    /// can take (`ClaimSQL`).
    /// The head of one label set in claim order: the first entry of the claim index for it.
    static let labelSetHead = """
        SELECT t.id, t.run_id, t.priority, t.queued_at, t.position FROM tasks t INDEXED BY tasks_queued_by_priority
        WHERE t.status = 'queued' AND t.labels_key = ?
          AND (t.workspace IS NULL OR NOT EXISTS (SELECT 1 FROM locks l WHERE l.workspace = t.workspace))
        ORDER BY \(ClaimSQL.claimOrder) LIMIT 1
        """

    static func oldestClaimable(_ db: Database, labels: Set<String>) throws -> (taskID: String, runID: String)? {
        let keys = try String.fetchAll(db.cachedStatement(sql: ClaimSQL.queuedLabelSets)).filter {
            ClaimSQL.runner(labels, canTake: $0)
        }
        var oldest: (taskID: String, runID: String, order: (Int64, Int64, String, Int64))?
        for key in keys {
            guard
                let row = try Row.fetchOne(db.cachedStatement(sql: labelSetHead), arguments: [key])
            else { continue }
            // Highest priority first, then oldest: negated, the smallest tuple wins.
            let order = (-(row["priority"] as Int64), row["queued_at"] as Int64? ?? 0, row["run_id"] as String, row["position"] as Int64)
            if let current = oldest, current.order <= order { continue }
            oldest = (row["id"], row["run_id"], order)
        }
        return oldest.map { ($0.taskID, $0.runID) }
    }

    /// The task this runner already took with this claim id and has not started yet, as it
    /// stands: answering the same claim twice changes nothing.
    static func claimedBefore(_ db: Database, runner: String, claimID: String) throws -> Committed<RunTask>? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: "SELECT id, run_id FROM tasks WHERE claim_id = ? AND runner = ? AND status = 'dispatched'"),
                arguments: [claimID, runner]),
            let run = try loadRun(db, runID: row["run_id"], scope: .task(row["id"], dependents: false)),
            let task = run.tasks.first
        else { return nil }
        return Committed(value: task, record: RunRecord(run: run, lockHolders: try lockHolders(db, for: run)), events: [])
    }

    /// Executes the plan of `change` — changed tasks, lock rows, run state, numbered events,
    /// outbox rows — and returns the committed result. Runs inside the caller's write transaction.
    static func save<Value: Sendable>(
        _ change: RunChange, original: Run, value: Value, _ db: Database
    ) throws -> Committed<Value> {
        let plan = ChangePlan(change, original: original)
        for task in plan.tasks {
            try db.executeCached(
                sql: """
                    UPDATE tasks SET status = ?, runner = ?, queued_at = ?, heartbeat_at = ?, deadline_at = ?, claim_id = ?, state = ?
                    WHERE id = ?
                    """,
                arguments: [
                    task.status.rawValue, task.state.runner, task.state.queuedAt?.milliseconds,
                    task.state.heartbeatAt?.milliseconds, task.timeoutDeadline?.milliseconds, task.pendingClaimID,
                    try JSONColumn.taskStates.encode(task.state, row: task.id), task.id,
                ])
        }
        for lock in plan.locksTaken {
            try db.executeCached(
                sql: "INSERT INTO locks (workspace, task_id, run_id, runner, acquired_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [lock.workspace, lock.taskID, lock.runID, lock.runner, lock.acquiredAt.milliseconds])
        }
        for lock in plan.locksFreed {
            try db.executeCached(sql: "DELETE FROM locks WHERE workspace = ? AND task_id = ?", arguments: [lock.workspace, lock.taskID])
        }
        let events = try append(plan.events, db)
        if plan.writesRun { try writeRunState(plan.run, db) }
        let record = RunRecord(
            run: plan.run, lockHolders: try lockHolders(db, for: plan.run), concurrencyHolders: try concurrencyHolders(db, for: plan.run))
        let queuedDeliveries = try enqueueDeliveries(for: events, of: record, now: change.now, db)
        return Committed(
            value: value, record: record, events: events, freesWork: plan.freesWork, endedAttempts: plan.endedAttempts,
            queuedDeliveries: queuedDeliveries)
    }

    /// Inserts numbered events: `seq` from the table's autoincrement (strictly increasing in
    /// commit order, since SQLite has one writer), `run_seq` as the plan numbered them.
    static func append(_ drafts: [ChangePlan.NumberedDraft], _ db: Database) throws -> [Event] {
        try drafts.map { numbered in
            let draft = numbered.draft
            try db.executeCached(
                sql: """
                    INSERT INTO events (id, run_id, run_seq, task_id, type, status, previous_status, timestamp, attempt, error, runner,
                                        approval)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    draft.id, draft.runID, numbered.runSeq, draft.taskID, draft.type, draft.status, draft.previousStatus,
                    draft.timestamp.milliseconds, draft.attempt,
                    draft.error.map { String(decoding: JSONValueEncoder.data($0), as: UTF8.self) }, draft.runner,
                    try draft.approval.map(JSONColumn.encode),
                ])
            return Event(seq: db.lastInsertedRowID, runSeq: numbered.runSeq, draft: draft)
        }
    }

    /// The outbox rows of `events` (`Outbox.rows`), written in the same transaction as the
    /// events; whether there were any.
    static func enqueueDeliveries(for events: [Event], of record: RunRecord, now: Timestamp, _ db: Database) throws -> Bool {
        guard !events.isEmpty else { return false }
        let subscriptions = try activeSubscriptions(db)
        guard !subscriptions.isEmpty || record.run.spec.callbackURL != nil else { return false }
        let rows = Outbox.rows(
            for: events, of: record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders,
            subscriptions: subscriptions, now: now)
        try insertDeliveries(rows, now: now, db)
        return !rows.isEmpty
    }

    /// Appends `runner.*` events and their outbox rows (`Outbox.runnerRows`).
    static func appendRunnerEvents(_ drafts: [EventDraft], now: Timestamp, _ db: Database) throws -> [Event] {
        let events = try append(drafts.map(ChangePlan.NumberedDraft.runner), db)
        guard !events.isEmpty else { return [] }
        try insertDeliveries(Outbox.runnerRows(for: events, subscriptions: try activeSubscriptions(db), now: now), now: now, db)
        return events
    }

    static func activeSubscriptions(_ db: Database) throws -> [Outbox.Subscription] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT id, url, events FROM webhooks WHERE active = 1")).map { row in
            Outbox.Subscription(id: row["id"], url: row["url"], patterns: try JSONColumn.decode([String].self, row["events"]))
        }
    }

    static func insertDeliveries(_ rows: [Outbox.Row], now: Timestamp, _ db: Database) throws {
        for row in rows {
            try db.executeCached(
                sql: """
                    INSERT INTO deliveries (id, webhook_id, run_id, event_id, event_seq, type, url, secret, payload, status,
                                            attempts, next_attempt_at, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, 'pending', '[]', ?, ?)
                    """,
                arguments: [
                    row.id, row.webhookID, row.lane, row.event.draft.id, row.event.seq, row.event.draft.type, row.url,
                    row.payload, now.milliseconds, now.milliseconds,
                ])
        }
    }

    static func writeRunState(_ run: Run, _ db: Database) throws {
        try db.executeCached(
            sql: "UPDATE runs SET status = ?, version = ?, deadline_at = ?, finished_at = ?, concurrency_slot = ?, state = ? WHERE id = ?",
            arguments: [
                run.status.rawValue, run.state.version, run.timeoutDeadline?.milliseconds, run.state.finishedAt?.milliseconds,
                run.state.concurrencySlot?.column,
                try JSONColumn.runStates.encode(run.state, row: run.id), run.id,
            ])
    }

    static func event(_ row: Row) throws -> Event {
        let errorText: String? = row["error"]
        let draft = EventDraft(
            id: row["id"], runID: row["run_id"], taskID: row["task_id"], type: row["type"], status: row["status"],
            previousStatus: row["previous_status"], timestamp: Timestamp(milliseconds: row["timestamp"]),
            attempt: row["attempt"], error: try errorText.map { try JSONColumn.decode(RunError.self, $0) }, runner: row["runner"],
            approval: try (row["approval"] as String?).map { try JSONColumn.decode(ApprovalDecision.self, $0) })
        return Event(seq: row["seq"], runSeq: row["run_seq"], draft: draft)
    }

    static func lock(_ row: Row) throws -> WorkspaceLock {
        WorkspaceLock(
            workspace: row["workspace"], taskID: row["task_id"], runID: row["run_id"], runner: row["runner"],
            acquiredAt: Timestamp(milliseconds: row["acquired_at"]))
    }
}
