import Foundation
import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Reading runs, tasks, events and locks; every function runs inside the caller's transaction.
extension PostgresRunStore {
    /// The run and its tasks. With `forUpdate`, holds the run's row lock and then its task rows
    /// (in position order) until commit: every change of a run takes the run row first, so
    /// writers of one run queue up behind one another, and a heartbeat cannot slip a stale
    /// `heartbeat_at` between our read and our write.
    static func loadRun(_ tx: PostgresTransaction, runID: String, forUpdate: Bool = false) async throws -> Run? {
        try await loadRun(tx, runID: runID, scope: .wholeRun, forUpdate: forUpdate)
    }

    /// The run's own row and the tasks `scope` names, in run order (locked as `loadRun` says).
    static func loadRun(_ tx: PostgresTransaction, runID: String, scope: ChangeScope, forUpdate: Bool) async throws -> Run? {
        guard let run = try await loadRunRow(tx, runID: runID, forUpdate: forUpdate) else { return nil }
        return try await withTasks(run, scope: scope, forUpdate: forUpdate, tx)
    }

    /// `run` (its own row, as loaded) with the tasks `scope` names, in run order.
    static func withTasks(_ run: Run, scope: ChangeScope, forUpdate: Bool, _ tx: PostgresTransaction) async throws -> Run {
        let lock = forUpdate ? " FOR UPDATE" : ""
        let runID = run.id
        let taskRows: [PostgresRow]
        switch scope {
        case .wholeRun:
            taskRows = try await tx.rows(
                "SELECT \(unescaped: taskColumns) FROM tasks WHERE run_id = \(runID) ORDER BY position\(unescaped: lock)")
        case .task(let taskID, let withDependents):
            // The dependents' ids come from the task's own row, in the same statement.
            let ids =
                withDependents
                ? "SELECT \(taskColumns) FROM tasks WHERE run_id = $2 AND (id = $1 OR id IN "
                    + "(SELECT json_array_elements_text(dependents::json) FROM tasks WHERE id = $1)) ORDER BY position"
                : "SELECT \(taskColumns) FROM tasks WHERE id = $1 AND run_id = $2"
            var binds = PostgresBindings()
            binds.append(taskID)
            binds.append(runID)
            taskRows = try await tx.rows(PostgresQuery(unsafeSQL: ids + lock, binds: binds))
        }
        return Run(id: runID, spec: run.spec, state: run.state, tasks: try taskRows.map { try task($0, runID: runID) })
    }

    /// The run's own row, without tasks (with `forUpdate`, holding its row lock until commit).
    static func loadRunRow(_ tx: PostgresTransaction, runID: String, forUpdate: Bool) async throws -> Run? {
        let lock = forUpdate ? " FOR UPDATE" : ""
        return try await tx.rows("SELECT id, spec, state FROM runs WHERE id = \(runID)\(unescaped: lock)").first.map(runRow)
    }

    /// The run that holds task `taskID` with that task (and, with `dependents`, the tasks that
    /// need it), all their rows locked — in one statement. `FOR UPDATE OF r, t` locks the run's
    /// row before each task's, the order every change of a run keeps, and answers the rows as
    /// the last commit before each lock left them (PostgreSQL re-reads a row it had to wait for).
    /// A task never moves to another run, and `dependents` is written once, with the run.
    static func loadLocked(_ tx: PostgresTransaction, runOfTask taskID: String, dependents: Bool) async throws -> Run? {
        let scope =
            dependents
            ? "(t.id = $1 OR t.id IN (SELECT json_array_elements_text(dependents::json) FROM tasks WHERE id = $1))" : "t.id = $1"
        var binds = PostgresBindings()
        binds.append(taskID)
        let rows = try await tx.rows(
            PostgresQuery(
                unsafeSQL: """
                    SELECT r.id, r.spec, r.state, \(taskColumnsOfT)
                    FROM runs r JOIN tasks t ON t.run_id = r.id
                    WHERE r.id = (SELECT run_id FROM tasks WHERE id = $1) AND \(scope)
                    ORDER BY t.position
                    FOR UPDATE OF r, t
                    """, binds: binds))
        guard let first = rows.first else { return nil }
        var run = try runRow(first.makeRandomAccess())
        run.tasks = try rows.map { try task($0, runID: run.id, from: 3) }
        return run
    }

    /// A run without its tasks from `id, spec, state`.
    static func runRow(_ row: PostgresRow) throws -> Run {
        try runRow(row.makeRandomAccess())
    }

    /// A run without its tasks from `id, spec, state` in the columns from `first` on.
    static func runRow(_ columns: PostgresRandomAccessRow, from first: Int = 0) throws -> Run {
        let id = try columns[first].decode(String.self)
        return Run(
            id: id, spec: try JSONColumn.runSpecs.decode(try columns[first + 1].decode(String.self), row: id),
            state: try JSONColumn.runStates.decode(try columns[first + 2].decode(String.self), row: id), tasks: [])
    }

    static let taskColumns = "id, spec, state, heartbeat_at, dependents"
    /// `taskColumns` of the tasks table named `t`.
    static let taskColumnsOfT = taskColumns.split(separator: ", ").map { "t." + $0 }.joined(separator: ", ")

    /// Run rows without their tasks, in the order of `ids` (unknown ids left out); task counts
    /// counted in SQL for rows written before they were kept.
    static func loadSummaries(_ tx: PostgresTransaction, ids: [String]) async throws -> [Run] {
        guard !ids.isEmpty else { return [] }
        var runs: [String: Run] = [:]
        var uncounted: [String] = []
        for row in try await tx.rows("SELECT id, spec, state FROM runs WHERE id = ANY(\(ids))") {
            let (id, spec, state) = try row.decode((String, String, String).self)
            let run = Run(
                id: id, spec: try JSONColumn.runSpecs.decode(spec, row: id), state: try JSONColumn.runStates.decode(state, row: id),
                tasks: [])
            if run.state.taskCounts == nil { uncounted.append(id) }
            runs[id] = run
        }
        if !uncounted.isEmpty {
            var counts: [String: [TaskStatus: Int]] = [:]
            for row in try await tx.rows(
                "SELECT run_id, status, count(*) FROM tasks WHERE run_id = ANY(\(uncounted)) GROUP BY run_id, status")
            {
                let (runID, status, count) = try row.decode((String, String, Int).self)
                if let status = TaskStatus(rawValue: status) { counts[runID, default: [:]][status] = count }
            }
            for id in uncounted { runs[id]?.state.taskCounts = TaskCounts(counts[id] ?? [:]) }
        }
        return ids.compactMap { runs[$0] }
    }

    /// A task from the `taskColumns` of `row`, starting at column `first`.
    static func task(_ row: PostgresRow, runID: String, from first: Int = 0) throws -> RunTask {
        let columns = row.makeRandomAccess()
        let id = try columns[first].decode(String.self)
        var state = try JSONColumn.taskStates.decode(try columns[first + 2].decode(String.self), row: id)
        state.heartbeatAt = Timestamp(column: try columns[first + 3].decode(Int64?.self))
        return RunTask(
            id: id, runID: runID, spec: try JSONColumn.taskSpecs.decode(try columns[first + 1].decode(String.self), row: id),
            state: state, dependents: try JSONColumn.dependents(try columns[first + 4].decode(String.self)))
    }

    static func loadRecord(_ tx: PostgresTransaction, runID: String) async throws -> RunRecord? {
        guard let run = try await loadRun(tx, runID: runID) else { return nil }
        return RunRecord(
            run: run, lockHolders: try await lockHolders(tx, for: run), concurrencyHolders: try await concurrencyHolders(tx, for: run))
    }

    /// Whether `lockHolders` or `concurrencyHolders` would read anything for `run`.
    static func readsHolders(_ run: Run) -> Bool {
        run.tasks.contains { $0.spec.workspace != nil } || (run.state.concurrencySlot == .waiting && run.spec.concurrency != nil)
    }

    /// The run and all its tasks in one statement — one snapshot without a transaction: the
    /// run's row first (position -1), then its tasks in run order.
    static func loadRunInOneStatement(_ tx: PostgresTransaction, runID: String) async throws -> Run? {
        let rows = try await tx.rows(
            """
            SELECT -1 AS position, id, spec, state, NULL::bigint, NULL::text FROM runs WHERE id = \(runID)
            UNION ALL
            SELECT position, \(unescaped: taskColumns) FROM tasks WHERE run_id = \(runID)
            ORDER BY 1
            """)
        guard let first = rows.first?.makeRandomAccess(), try first[0].decode(Int64.self) == -1 else { return nil }
        var run = try runRow(first, from: 1)
        run.tasks = try rows.dropFirst().map { try task($0, runID: run.id, from: 1) }
        return run
    }

    static func lockHolders(_ tx: PostgresTransaction, for run: Run) async throws -> [String: String] {
        let workspaces = Array(Set(run.tasks.compactMap(\.spec.workspace)))
        guard !workspaces.isEmpty else { return [:] }
        var holders: [String: String] = [:]
        for row in try await tx.rows("SELECT workspace, task_id FROM locks WHERE workspace = ANY(\(workspaces))") {
            let (workspace, taskID) = try row.decode((String, String).self)
            holders[workspace] = taskID
        }
        return holders
    }

    static let eventColumns = "seq, id, run_id, run_seq, task_id, type, status, previous_status, timestamp, attempt, error, runner, approval"

    static func event(_ row: PostgresRow) throws -> Event {
        let (seq, id, runID, runSeq, taskID, type, status, previousStatus, timestamp, attempt, errorText, runner, approval) = try row.decode(
            (Int64, String, String?, Int?, String?, String, String, String?, Int64, Int?, String?, String?, String?).self)
        let draft = EventDraft(
            id: id, runID: runID, taskID: taskID, type: type, status: status, previousStatus: previousStatus,
            timestamp: Timestamp(milliseconds: timestamp), attempt: attempt,
            error: try errorText.map { try JSONColumn.decode(RunError.self, $0) }, runner: runner,
            approval: try approval.map { try JSONColumn.decode(ApprovalDecision.self, $0) })
        return Event(seq: seq, runSeq: runSeq, draft: draft)
    }

    static let lockColumns = "workspace, task_id, run_id, runner, acquired_at"

    static func lock(_ row: PostgresRow) throws -> WorkspaceLock {
        let (workspace, taskID, runID, runner, acquiredAt) = try row.decode((String, String, String, String, Int64).self)
        return WorkspaceLock(
            workspace: workspace, taskID: taskID, runID: runID, runner: runner, acquiredAt: Timestamp(milliseconds: acquiredAt))
    }
}

/// A multi-row `VALUES` list whose every value is a bound parameter: only the `$n` markers
/// are written into the SQL text.
struct BoundValues {
    private(set) var binds = PostgresBindings()
    private var rows: [String] = []
    private var current: [String] = []

    /// Rows per statement, well under the protocol's 65 535 parameters.
    static let rowsPerStatement = 500

    var rowCount: Int { rows.count }

    mutating func add<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value?) throws {
        current.append(try marker(value))
    }

    /// Binds `value` and answers its `$n` marker, for statements that are not a `VALUES` list.
    mutating func marker<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value?) throws -> String {
        try binds.append(value)
        return "$\(binds.count)"
    }

    /// Values were added since the last `endRow`.
    var pendingRow: Bool { !current.isEmpty }

    mutating func endRow() {
        rows.append("(" + current.joined(separator: ", ") + ")")
        current = []
    }

    /// `prefix` (a constant `INSERT INTO t (columns)`) followed by the rows.
    func query(_ prefix: String) -> PostgresQuery {
        PostgresQuery(unsafeSQL: prefix + " VALUES " + rows.joined(separator: ", "), binds: binds)
    }

    /// The rows added so far as a `VALUES` list's text, forgotten so the next rows start a new
    /// list — whose markers go on numbering: several lists of one statement share the binds.
    mutating func takeRows() -> String {
        defer { rows = [] }
        return rows.joined(separator: ", ")
    }
}

extension PostgresTransaction {
    /// Inserts `items` with one multi-row statement per `BoundValues.rowsPerStatement`.
    func insert<Item>(_ prefix: String, _ items: some Sequence<Item>, _ fill: (inout BoundValues, Item) throws -> Void) async throws {
        var values = BoundValues()
        for item in items {
            try fill(&values, item)
            if values.pendingRow { values.endRow() }
            if values.rowCount == BoundValues.rowsPerStatement {
                try await execute(values.query(prefix))
                values = BoundValues()
            }
        }
        if values.rowCount > 0 { try await execute(values.query(prefix)) }
    }
}
