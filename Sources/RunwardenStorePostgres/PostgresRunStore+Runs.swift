import Foundation
import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Creating, reading and changing runs.
extension PostgresRunStore {
    // MARK: - Create

    public func createRun(_ run: Run, events drafts: [EventDraft], idempotency: IdempotencyKey?) async throws -> CreateOutcome {
        try await transaction(.write) { tx in
            if let idempotency {
                // Claims the key, or waits for a concurrent holder of it to commit and then
                // finds its row: two equal requests racing on two nodes create one run.
                let inserted = try await tx.rows(
                    """
                    INSERT INTO idempotency_keys (scope, key, body_sha256, run_id, created_at)
                    VALUES (\(idempotency.scope), \(idempotency.key), \(idempotency.bodyDigest), \(run.id),
                            \(run.state.createdAt.milliseconds))
                    ON CONFLICT (scope, key) DO NOTHING RETURNING run_id
                    """)
                if inserted.isEmpty {
                    guard
                        let row = try await tx.rows(
                            "SELECT body_sha256, run_id FROM idempotency_keys WHERE scope = \(idempotency.scope) AND key = \(idempotency.key)"
                        ).first
                    else { return CreateOutcome.keyReused }
                    let (body, runID) = try row.decode((String, String).self)
                    guard body == idempotency.bodyDigest, let record = try await Self.loadRecord(tx, runID: runID) else {
                        return .keyReused
                    }
                    return .replayed(record)
                }
            }
            var stored = run
            var drafts = drafts
            let others = try await Self.enterLine(&stored, drafts: &drafts, now: run.state.createdAt, tx)
            let numbered = ChangePlan.number(drafts, in: &stored)
            // The run's row and (up to a statement's worth of) its tasks ride on the statement
            // that numbers its events: one round trip for all three.
            var writes = RowWrites()
            try writes.values.add(stored.id)
            try writes.values.add(stored.spec.workflow)
            try writes.values.add(stored.status.rawValue)
            try writes.values.add(stored.state.version)
            try writes.values.add(stored.state.createdAt.milliseconds)
            try writes.values.add(stored.timeoutDeadline?.milliseconds)
            try writes.values.add(stored.spec.concurrency?.key)
            try writes.values.add(stored.state.concurrencySlot?.column)
            try writes.values.add(try JSONColumn.runSpecs.encode(stored.spec, row: stored.id))
            try writes.values.add(try JSONColumn.runStates.encode(stored.state, row: stored.id))
            writes.values.endRow()
            writes.statements.append(Self.runsInsert + " VALUES " + writes.values.takeRows())
            if stored.tasks.count <= BoundValues.rowsPerStatement {
                for item in stored.tasks.enumerated() { try Self.addTaskRow(&writes.values, item, runID: stored.id) }
                writes.statements.append(Self.tasksInsert + " VALUES " + writes.values.takeRows())
            } else {
                try await writes.execute(tx)
                writes = RowWrites()
                try await tx.insert(Self.tasksInsert, stored.tasks.enumerated()) { values, item in
                    try Self.addTaskRow(&values, item, runID: stored.id)
                }
            }
            tx.notify(.run(stored.id))
            if let earlierID = stored.spec.rerunOf, var earlier = try await Self.loadRunRow(tx, runID: earlierID, forUpdate: true) {
                earlier.recordRerun(stored.id)
                try await Self.writeRunState(earlier, tx)
                tx.notify(.run(earlierID))
            }
            if stored.tasks.contains(where: { $0.status == .queued }) { tx.notify(.claims) }
            let record = RunRecord(
                run: stored, lockHolders: try await Self.lockHolders(tx, for: stored),
                concurrencyHolders: try await Self.concurrencyHolders(tx, for: stored))
            let (events, queuedDeliveries) = try await Self.commitEvents(
                numbered, of: record, now: stored.state.createdAt, tx, after: writes)
            return .created(
                Committed(
                    value: (), record: record, events: events, freesWork: stored.tasks.contains { $0.status == .queued },
                    queuedDeliveries: queuedDeliveries, others: others))
        }
    }

    static let runsInsert =
        "INSERT INTO runs (id, workflow, status, version, created_at, deadline_at, concurrency_key, concurrency_slot, spec, state)"
    static let tasksInsert = """
        INSERT INTO tasks (id, run_id, position, status, workspace, labels, runner, queued_at, heartbeat_at,
                           deadline_at, spec, state, dependents, labels_key, priority)
        """

    /// The values of task `item` (its position and itself) for `tasksInsert`, as one row.
    private static func addTaskRow(_ values: inout BoundValues, _ item: (offset: Int, element: RunTask), runID: String) throws {
        let (position, task) = item
        try values.add(task.id)
        try values.add(runID)
        try values.add(position)
        try values.add(task.status.rawValue)
        try values.add(task.spec.workspace)
        try values.add(Array(Set(task.spec.labels)).sorted())
        try values.add(task.state.runner)
        try values.add(task.state.queuedAt?.milliseconds)
        try values.add(task.state.heartbeatAt?.milliseconds)
        try values.add(task.timeoutDeadline?.milliseconds)
        try values.add(try JSONColumn.taskSpecs.encode(task.spec, row: task.id))
        try values.add(try JSONColumn.taskStates.encode(task.state, row: task.id))
        try values.add(try JSONColumn.encode(task.dependents))
        try values.add(ClaimSQL.labelsKey(for: task.spec))
        try values.add(task.spec.claimPriority)
        values.endRow()
    }

    // MARK: - Reads

    /// One round trip for a run with nothing more to read in its snapshot (no workspace, no
    /// concurrency wait: `readsHolders`); else a transaction reads it with its holders.
    public func run(id: String) async throws -> RunRecord? {
        guard let run = try await transaction(.statement, { tx in try await Self.loadRunInOneStatement(tx, runID: id) }) else {
            return nil
        }
        guard Self.readsHolders(run) else { return RunRecord(run: run, lockHolders: [:], concurrencyHolders: []) }
        return try await transaction(.read) { tx in try await Self.loadRecord(tx, runID: id) }
    }

    public func runSummary(id: String) async throws -> Run? {
        try await transaction(.read) { tx in try await Self.loadSummaries(tx, ids: [id]).first }
    }

    public func task(id: String) async throws -> (record: RunRecord, index: Int)? {
        let found = try await transaction(.read) { tx -> TaskLookup? in
            guard let runID = try await tx.rows("SELECT run_id FROM tasks WHERE id = \(id)").first?.decode(String.self),
                let record = try await Self.loadRecord(tx, runID: runID),
                let index = record.run.taskIndex(id: id)
            else { return nil }
            return TaskLookup(record: record, index: index)
        }
        return found.map { ($0.record, $0.index) }
    }

    public func runs(_ query: RunQuery) async throws -> RunPage {
        let limit = max(0, query.limit)
        return try await transaction(.read) { tx in
            var binds = PostgresBindings()
            var conditions: [String] = []
            if let status = query.status {
                binds.append(status.rawValue)
                conditions.append("status = $\(binds.count)")
            }
            if let workflow = query.workflow {
                binds.append(workflow)
                conditions.append("workflow = $\(binds.count)")
            }
            if let before = query.before {
                binds.append(before)
                conditions.append("id < $\(binds.count)")
            }
            if let statuses = query.statuses {
                binds.append(statuses.map(\.rawValue))
                conditions.append("status = ANY($\(binds.count))")
            }
            for (key, value) in query.sortedMetadata {
                binds.append(key)
                binds.append(value)
                conditions.append("(spec::jsonb -> 'metadata' -> $\(binds.count - 1)::text) = to_jsonb($\(binds.count)::text)")
            }
            if let after = query.createdAfter {
                binds.append(after.milliseconds)
                conditions.append("created_at >= $\(binds.count)")
            }
            if let createdBefore = query.createdBefore {
                binds.append(createdBefore.milliseconds)
                conditions.append("created_at < $\(binds.count)")
            }
            binds.append(limit + 1)
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            // Only constant fragments and `$n` markers go into the text; the values are bound.
            let ids = try await tx.rows(
                PostgresQuery(unsafeSQL: "SELECT id FROM runs \(filter) ORDER BY id DESC LIMIT $\(binds.count)", binds: binds)
            ).map { try $0.decode(String.self) }
            let page = Array(ids.prefix(limit))
            let runs = try await Self.loadSummaries(tx, ids: page)
            return RunPage(runs: runs, nextCursor: ids.count > limit ? page.last : nil)
        }
    }

    public func events(runID: String?, after seq: Int64, limit: Int) async throws -> [Event] {
        let limit = max(0, limit)
        if let runID {
            // One run's events: its changes commit one after another (see `PostgresRunStore+Seq`).
            return try await transaction(.read) { tx in
                try await tx.rows(
                    """
                    SELECT \(unescaped: Self.eventColumns) FROM events WHERE run_id = \(runID) AND seq > \(seq)
                    ORDER BY seq LIMIT \(limit)
                    """
                ).map(Self.event)
            }
        }
        // The whole feed stops at the fence. Events beyond it that are already visible wait
        // for a writer still in flight, which commits or rolls back within milliseconds: look
        // again shortly (a bounded number of times) rather than answer nothing.
        for attempt in 1...Self.fencedReadAttempts {
            let fence = try await seqFence()
            let (events, heldBack) = try await transaction(.read) { tx -> ([Event], Bool) in
                let events = try await tx.rows(
                    """
                    SELECT \(unescaped: Self.eventColumns) FROM events WHERE seq > \(seq) AND seq <= \(fence)
                    ORDER BY seq LIMIT \(limit)
                    """
                ).map(Self.event)
                guard events.isEmpty else { return (events, false) }
                let beyond = try await tx.rows("SELECT 1 FROM events WHERE seq > \(max(seq, fence)) LIMIT 1")
                return (events, !beyond.isEmpty)
            }
            if !heldBack || attempt == Self.fencedReadAttempts { return events }
            try await Task.sleep(for: .milliseconds(2 * attempt))
        }
        return []
    }

    /// Looks at a feed held back by the fence, about 0.1 s in all.
    static let fencedReadAttempts = 10

    /// The fence: a stream that starts live from here misses nothing still in flight.
    public func latestSeq() async throws -> Int64 {
        try await seqFence()
    }

    public func locks() async throws -> [WorkspaceLock] {
        try await transaction(.read) { tx in
            try await tx.rows("SELECT \(unescaped: Self.lockColumns) FROM locks ORDER BY acquired_at, workspace").map(Self.lock)
        }
    }

    public func dueWork(leaseCutoff: Timestamp, now: Timestamp, limit: Int) async throws -> [DueWork] {
        let limit = max(0, limit)
        return try await transaction(.read) { tx in
            let timedOutRuns = try await tx.rows(
                "SELECT id FROM runs WHERE deadline_at IS NOT NULL AND deadline_at <= \(now.milliseconds) ORDER BY deadline_at LIMIT \(limit)"
            ).map { DueWork.runTimedOut(runID: try $0.decode(String.self)) }
            let timedOutTasks = try await tx.rows(
                """
                SELECT id, run_id FROM tasks WHERE deadline_at IS NOT NULL AND deadline_at <= \(now.milliseconds)
                ORDER BY deadline_at LIMIT \(limit)
                """
            ).map { row in
                let (id, runID) = try row.decode((String, String).self)
                return DueWork.taskTimedOut(runID: runID, taskID: id)
            }
            let lostLeases = try await tx.rows(
                """
                SELECT id, run_id FROM tasks
                WHERE status IN ('dispatched', 'running', 'canceling') AND heartbeat_at < \(leaseCutoff.milliseconds)
                ORDER BY heartbeat_at LIMIT \(limit)
                """
            ).map { row in
                let (id, runID) = try row.decode((String, String).self)
                return DueWork.leaseExpired(runID: runID, taskID: id)
            }
            return Array((timedOutRuns + timedOutTasks + lostLeases).prefix(limit))
        }
    }

    // MARK: - Writes

    public func update<Value: Sendable>(
        runID: String, scope: ChangeScope, now: Timestamp, _ body: @escaping @Sendable (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>? {
        try await transaction(.write) { tx in try await Self.change(runID: runID, scope: scope, now: now, tx, body) }
    }

    public func update<Value: Sendable>(
        runOfTask taskID: String, dependents: Bool, now: Timestamp,
        _ body: @escaping @Sendable (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>? {
        try await transaction(.write) { tx -> Committed<Value>? in
            guard let run = try await Self.loadLocked(tx, runOfTask: taskID, dependents: dependents) else { return nil }
            return try await Self.change(loaded: run, scope: .task(taskID, dependents: dependents), now: now, tx, body)
        }
    }

    /// Loads `scope` (locking the run row, unless the caller holds it already), applies `body`,
    /// and saves; again with the whole run when the change reached past its scope.
    static func change<Value: Sendable>(
        runID: String, scope: ChangeScope, now: Timestamp, _ tx: PostgresTransaction, lockingRun: Bool = true,
        _ body: (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>? {
        guard let run = try await loadRun(tx, runID: runID, scope: scope, forUpdate: lockingRun) else { return nil }
        return try await change(loaded: run, scope: scope, now: now, tx, lockingRun: lockingRun, body)
    }

    /// `change` of a run already loaded (with `scope`'s tasks, locked as `lockingRun` says).
    static func change<Value: Sendable>(
        loaded run: Run, scope: ChangeScope, now: Timestamp, _ tx: PostgresTransaction, lockingRun: Bool = true,
        _ body: (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>? {
        let runID = run.id
        var change = RunChange(run, now: now, hasWholeRun: scope == .wholeRun || run.holdsEveryTask)
        let value = try body(&change)
        if change.needsWholeRun {
            return try await Self.change(runID: runID, scope: .wholeRun, now: now, tx, lockingRun: lockingRun, body)
        }
        var committed = try await save(change, original: run, value: value, tx)
        // A run that left its concurrency key's line lets the next in line in (SPEC §10).
        if let key = ConcurrencyRules.releasedKey(before: run, after: committed.record.run) {
            committed.others += try await admitWaiting(key: key, now: now, tx)
        }
        return committed
    }

    public func renewLeases(now: Timestamp) async throws -> Int {
        try await transaction(.write) { tx in
            // Rows locked in one order (as a heartbeat does), so two such statements cannot deadlock.
            try await tx.rows(
                """
                UPDATE tasks SET heartbeat_at = \(now.milliseconds)
                WHERE id IN (SELECT id FROM tasks WHERE status IN ('dispatched', 'running', 'canceling')
                             ORDER BY run_id, position FOR UPDATE)
                RETURNING id
                """
            ).count
        }
    }
}

/// `task(id:)`'s answer, as a Sendable value to leave the transaction with.
struct TaskLookup: Sendable {
    var record: RunRecord
    var index: Int
}
