import Foundation
import GRDB
import RunwardenCore
import RunwardenStore

/// `RunStore` on one SQLite file through GRDB: a `DatabasePool` in WAL mode, so reads never
/// wait for the writer, and writes are serialized transactions.
///
/// Durability: `synchronous = FULL` — every acknowledged change has been fsynced to the WAL,
/// so it survives a crash of the process and of the machine.
public final class SQLiteRunStore: RunStore {
    let pool: DatabasePool
    let committer: GroupCommit
    let stamps: ChangeStamps

    /// Opens and migrates the database on a dispatch queue: opening syncs the file several
    /// times, which must not hold one of the few threads that all async code shares.
    public static func open(path: String) async throws -> SQLiteRunStore {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try SQLiteRunStore(path: path) }) }
        }
    }

    /// Opens (or creates) the database at `path` and migrates it to the current schema.
    public init(path: String) throws {
        let stamps = ChangeStamps()
        self.stamps = stamps
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // Reads run on the cooperative threads (see `reading`): one reader each, and some over.
        configuration.maximumReaderCount = max(5, ProcessInfo.processInfo.activeProcessorCount + 2)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // After the pool is open: GRDB sets `synchronous = NORMAL` on its writer when it
            // turns WAL on (after any `prepareDatabase`), which in WAL mode syncs only at
            // checkpoints — commits acknowledged before they are on disk. The writer is the
            // only connection that commits, so this is where FULL must hold.
            try pool.barrierWriteWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                // A new file gives the pages retention frees back to the file system, a batch at a
                // time (`compactRuns`); an older one reuses them. Opening in WAL mode has already
                // written the file's header, so the setting takes a VACUUM — of an empty file here.
                if try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") != 2,
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") == 0
                {
                    try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                    try db.execute(sql: "VACUUM")
                }
            }
            // A file a newer runwarden migrated holds tables this one would misread: refuse it
            // rather than write rows the newer code no longer expects (a downgrade by mistake).
            if try pool.read({ db in try SQLiteSchema.migrator.hasBeenSuperseded(db) }) {
                throw StoreError.unavailable(
                    "the database at \(path) was migrated by a newer runwarden; run that version or newer, or restore a backup taken before the upgrade")
            }
            try SQLiteSchema.migrator.migrate(pool)
            try pool.barrierWriteWithoutTransaction { db in try stamps.install(on: db) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.unavailable("cannot open SQLite database at \(path): \(error)")
        }
        committer = GroupCommit(pool: pool, afterTransaction: { stamps.publish() })
    }

    // MARK: - Create

    public func createRun(_ run: Run, events drafts: [EventDraft], idempotency: IdempotencyKey?) async throws -> CreateOutcome {
        try await writing { db in
            var run = run
            var drafts = drafts
            if let idempotency,
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT body_sha256, run_id FROM idempotency_keys WHERE scope = ? AND key = ?"),
                    arguments: [idempotency.scope, idempotency.key])
            {
                guard (row["body_sha256"] as String) == idempotency.bodyDigest else { return .keyReused }
                guard let record = try Self.loadRecord(db, runID: row["run_id"]) else { return .keyReused }
                return .replayed(record)
            }
            let others = try Self.enterLine(&run, drafts: &drafts, now: run.state.createdAt, db)
            try db.executeCached(
                sql: """
                    INSERT INTO runs (id, workflow, status, version, created_at, concurrency_key, spec, state)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    run.id, run.spec.workflow, run.status.rawValue, run.state.version, run.state.createdAt.milliseconds,
                    run.spec.concurrency?.key,
                    try JSONColumn.runSpecs.encode(run.spec, row: run.id),
                    try JSONColumn.runStates.encode(run.state, row: run.id),
                ])
            for (position, task) in run.tasks.enumerated() {
                try db.executeCached(
                    sql: """
                        INSERT INTO tasks (id, run_id, position, status, workspace, runner, queued_at, heartbeat_at, deadline_at,
                                           spec, state, dependents, labels_key, priority)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        task.id, run.id, position, task.status.rawValue, task.spec.workspace, task.state.runner,
                        task.state.queuedAt?.milliseconds, task.state.heartbeatAt?.milliseconds, task.timeoutDeadline?.milliseconds,
                        try JSONColumn.taskSpecs.encode(task.spec, row: task.id),
                        try JSONColumn.taskStates.encode(task.state, row: task.id), try JSONColumn.encode(task.dependents),
                        ClaimSQL.labelsKey(for: task.spec), task.spec.claimPriority,
                    ])
            }
            if let idempotency {
                try db.executeCached(
                    sql: "INSERT INTO idempotency_keys (scope, key, body_sha256, run_id, created_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        idempotency.scope, idempotency.key, idempotency.bodyDigest, run.id, run.state.createdAt.milliseconds,
                    ])
            }
            var stored = run
            let events = try Self.append(ChangePlan.number(drafts, in: &stored), db)
            try Self.writeRunState(stored, db)
            if let earlierID = run.spec.rerunOf, var earlier = try Self.loadRunRow(db, runID: earlierID) {
                earlier.recordRerun(run.id)
                try Self.writeRunState(earlier, db)
            }
            let record = RunRecord(
                run: stored, lockHolders: try Self.lockHolders(db, for: stored),
                concurrencyHolders: try Self.concurrencyHolders(db, for: stored))
            let queuedDeliveries = try Self.enqueueDeliveries(for: events, of: record, now: run.state.createdAt, db)
            return .created(
                Committed(
                    value: (), record: record, events: events, freesWork: stored.tasks.contains { $0.status == .queued },
                    queuedDeliveries: queuedDeliveries, others: others))
        }
    }

    // MARK: - Reads

    public func run(id: String) async throws -> RunRecord? {
        try await reading { db in try Self.loadRecord(db, runID: id) }
    }

    public func snapshotStamp(runID: String) -> SnapshotStamp? {
        stamps.stamp(runID: runID)
    }

    public func runSummary(id: String) async throws -> Run? {
        try await reading { db in try Self.loadSummary(db, runID: id) }
    }

    public func task(id: String) async throws -> (record: RunRecord, index: Int)? {
        try await reading { db in
            guard
                let runID = try String.fetchOne(
                    db.cachedStatement(sql: "SELECT run_id FROM tasks WHERE id = ?"), arguments: [id]),
                let record = try Self.loadRecord(db, runID: runID),
                let index = record.run.taskIndex(id: id)
            else { return nil }
            return (record, index)
        }
    }

    public func runs(_ query: RunQuery) async throws -> RunPage {
        try await reading { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let status = query.status {
                conditions.append("status = ?")
                arguments += [status.rawValue]
            }
            if let workflow = query.workflow {
                conditions.append("workflow = ?")
                arguments += [workflow]
            }
            if let before = query.before {
                conditions.append("id < ?")
                arguments += [before]
            }
            if let statuses = query.statuses {
                conditions.append("status IN (\(statuses.map { _ in "?" }.joined(separator: ", ")))")
                arguments += StatementArguments(statuses.map(\.rawValue))
            }
            for (key, value) in query.sortedMetadata {
                // json_each names the member by its key as data, whatever characters it holds.
                conditions.append("EXISTS (SELECT 1 FROM json_each(spec, '$.metadata') WHERE key = ? AND type = 'text' AND value = ?)")
                arguments += [key, value]
            }
            if let after = query.createdAfter {
                conditions.append("created_at >= ?")
                arguments += [after.milliseconds]
            }
            if let createdBefore = query.createdBefore {
                conditions.append("created_at < ?")
                arguments += [createdBefore.milliseconds]
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [query.limit + 1]
            let ids = try String.fetchAll(
                db.cachedStatement(sql: "SELECT id FROM runs \(filter) ORDER BY id DESC LIMIT ?"), arguments: arguments)
            let page = ids.prefix(query.limit)
            let runs = try page.compactMap { try Self.loadSummary(db, runID: $0) }
            return RunPage(runs: runs, nextCursor: ids.count > query.limit ? page.last : nil)
        }
    }

    public func events(runID: String?, after seq: Int64, limit: Int) async throws -> [Event] {
        try await reading { db in
            let rows: [Row]
            if let runID {
                rows = try Row.fetchAll(
                    db.cachedStatement(sql: "SELECT * FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"),
                    arguments: [runID, seq, limit])
            } else {
                rows = try Row.fetchAll(
                    db.cachedStatement(sql: "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?"), arguments: [seq, limit])
            }
            return try rows.map(Self.event)
        }
    }

    public func latestSeq() async throws -> Int64 {
        try await reading { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM events") ?? 0 }
    }

    public func locks() async throws -> [WorkspaceLock] {
        try await reading { db in
            try Row.fetchAll(db, sql: "SELECT * FROM locks ORDER BY acquired_at, workspace").map(Self.lock)
        }
    }

    public func dueWork(leaseCutoff: Timestamp, now: Timestamp, limit: Int) async throws -> [DueWork] {
        try await reading { db in
            let timedOutRuns = try String.fetchAll(
                db.cachedStatement(
                    sql: "SELECT id FROM runs WHERE deadline_at IS NOT NULL AND deadline_at <= ? ORDER BY deadline_at LIMIT ?"),
                arguments: [now.milliseconds, limit]
            ).map { DueWork.runTimedOut(runID: $0) }
            let timedOutTasks = try Row.fetchAll(
                db,
                sql:
                    "SELECT id, run_id FROM tasks WHERE deadline_at IS NOT NULL AND deadline_at <= ? ORDER BY deadline_at LIMIT ?",
                arguments: [now.milliseconds, limit]
            ).map { DueWork.taskTimedOut(runID: $0["run_id"], taskID: $0["id"]) }
            let lostLeases = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, run_id FROM tasks
                    WHERE status IN ('dispatched', 'running', 'canceling') AND heartbeat_at < ?
                    ORDER BY heartbeat_at LIMIT ?
                    """,
                arguments: [leaseCutoff.milliseconds, limit]
            ).map { DueWork.leaseExpired(runID: $0["run_id"], taskID: $0["id"]) }
            return Array((timedOutRuns + timedOutTasks + lostLeases).prefix(limit))
        }
    }

    public func renewLeases(now: Timestamp) async throws -> Int {
        try await writing { db in
            try db.executeCached(
                sql: "UPDATE tasks SET heartbeat_at = ? WHERE status IN ('dispatched', 'running', 'canceling')",
                arguments: [now.milliseconds])
            return db.changesCount
        }
    }

    public func checkHealth() async throws {
        do {
            _ = try await reading { db in try Int.fetchOne(db, sql: "SELECT 1") }
        } catch {
            throw StoreError.unavailable("SQLite database cannot be read: \(error)")
        }
    }

    public func statusCounts() async throws -> StatusCounts {
        try await reading { db in
            var counts = StatusCounts(runs: [:], tasks: [:])
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT kind, status, n FROM status_counts WHERE n <> 0")) {
                counts.add(kind: row["kind"], status: row["status"], count: row["n"])
            }
            return counts
        }
    }

    // MARK: - Writes

    public func update<Value: Sendable>(
        runID: String, scope: ChangeScope, now: Timestamp, _ body: @escaping @Sendable (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>? {
        try await writing { db in try Self.change(runID: runID, scope: scope, now: now, db, body) }
    }

    public func update<Value: Sendable>(
        runOfTask taskID: String, dependents: Bool, now: Timestamp,
        _ body: @escaping @Sendable (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>? {
        try await writing { db -> Committed<Value>? in
            guard
                let runID = try String.fetchOne(
                    db.cachedStatement(sql: "SELECT run_id FROM tasks WHERE id = ?"), arguments: [taskID])
            else { return nil }
            return try Self.change(runID: runID, scope: .task(taskID, dependents: dependents), now: now, db, body)
        }
    }

    /// Loads `scope`, applies `body`, and saves; again with the whole run when the change
    /// reached past its scope. A run that left its concurrency key's line lets the next in
    /// line in, in the same transaction.
    static func change<Value: Sendable>(
        runID: String, scope: ChangeScope, now: Timestamp, _ db: Database, _ body: (inout RunChange) throws -> Value
    ) throws -> Committed<Value>? {
        guard let run = try loadRun(db, runID: runID, scope: scope) else { return nil }
        var change = RunChange(run, now: now, hasWholeRun: scope == .wholeRun || run.holdsEveryTask)
        let value = try body(&change)
        if change.needsWholeRun { return try Self.change(runID: runID, scope: .wholeRun, now: now, db, body) }
        var committed = try save(change, original: run, value: value, db)
        if let key = ConcurrencyRules.releasedKey(before: run, after: committed.record.run) {
            committed.others += try admitWaiting(key: key, now: now, db)
        }
        return committed
    }

    public func claim(runner: String, labels: Set<String>, claimID: String?, now: Timestamp) async throws -> Committed<RunTask>? {
        try await writing { db -> Committed<RunTask>? in
            if let claimID, let again = try Self.claimedBefore(db, runner: runner, claimID: claimID) { return again }
            // Drained (SPEC §8): checked with the claim, so a claim already waiting when the drain came takes nothing.
            if try Bool.fetchOne(db.cachedStatement(sql: RunnerSQL.isDraining("?")), arguments: [runner]) == true { return nil }
            guard let (taskID, runID) = try Self.oldestClaimable(db, labels: labels) else { return nil }
            return try Self.change(runID: runID, scope: .task(taskID, dependents: false), now: now, db) { change in
                try change.claim(taskID: taskID, runner: runner, claimID: claimID)
                return change.committed.tasks.first { $0.id == taskID }
            }?.compactMapValue { $0 }
        }
    }

    public func heartbeat(runner: String, taskIDs: [String], now: Timestamp) async throws -> [String] {
        guard !taskIDs.isEmpty else { return [] }
        return try await writing { db in
            let placeholders = Array(repeating: "?", count: taskIDs.count).joined(separator: ", ")
            var arguments: StatementArguments = [now.milliseconds, runner]
            arguments += StatementArguments(taskIDs)
            try db.execute(
                sql: """
                    UPDATE tasks SET heartbeat_at = ?
                    WHERE runner = ? AND status IN ('dispatched', 'running', 'canceling') AND id IN (\(placeholders))
                    """,
                arguments: arguments)
            let rows = try Row.fetchAll(
                db, sql: "SELECT id, status, runner FROM tasks WHERE id IN (\(placeholders))",
                arguments: StatementArguments(taskIDs))
            var known: [String: (TaskStatus?, String?)] = [:]
            for row in rows { known[row["id"]] = (TaskStatus(rawValue: row["status"]), row["runner"]) }
            return taskIDs.filter { id in
                let (status, holder) = known[id] ?? (nil, nil)
                return HeartbeatVerdict.mustStop(status: status, holder: holder, runner: runner)
            }
        }
    }

    public func releaseLock(workspace: String, now: Timestamp) async throws -> WorkspaceLock? {
        try await writing { db -> WorkspaceLock? in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT * FROM locks WHERE workspace = ?"), arguments: [workspace])
            else {
                return nil
            }
            let lock = try Self.lock(row)
            _ = try Self.change(runID: lock.runID, scope: .task(lock.taskID, dependents: false), now: now, db) { change in
                change.lockReleased(taskID: lock.taskID)
            }
            try db.executeCached(
                sql: "DELETE FROM locks WHERE workspace = ?",
                arguments: [workspace])
            return lock
        }
    }
}
