import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Claims, heartbeats and workspace locks: the operations several nodes race on.
///
/// Lock order, which keeps them free of deadlocks: a change of a run takes the run row, then
/// its task rows in position order, then (last) the `seq` counter; a heartbeat takes only task
/// rows, in (run, position) order; a claim takes a run row first too — without waiting
/// (`SKIP LOCKED`), or, in its fallback, waiting while it holds nothing — and then its task row.
/// A task row is never locked by anyone who does not hold its run row, except by a heartbeat,
/// which only touches tasks already handed out.
extension PostgresRunStore {
    private enum ClaimAttempt: Sendable {
        case claimed(Committed<RunTask>)
        case nothingClaimable
        /// The candidate was taken or changed under us: look again.
        case lookAgain
    }

    /// How often a claim looks again after losing a race before it answers "nothing".
    private static let claimAttempts = 8

    public func claim(runner: String, labels: Set<String>, claimID: String?, now: Timestamp) async throws -> Committed<RunTask>? {
        let runnerLabels = Array(labels).sorted()
        if let claimID, let again = try await transaction(.read, { tx in try await Self.claimedBefore(tx, runner: runner, claimID: claimID) }) {
            return again
        }
        for _ in 0..<Self.claimAttempts {
            let attempt: ClaimAttempt
            do {
                attempt = try await transaction(.write) { tx in
                    try await Self.claimOnce(runner: runner, labels: runnerLabels, claimID: claimID, now: now, tx)
                }
            } catch let error where Self.sqlState(error) == "23505" {
                // Another claim took the workspace lock first (the `locks` primary key refused
                // ours); everything rolled back. The workspace is no longer free: look again.
                continue
            }
            switch attempt {
            case .claimed(let committed): return committed
            case .nothingClaimable: return nil
            case .lookAgain: continue
            }
        }
        return nil
    }

    /// The label sets of queued tasks (`ClaimSQL.queuedLabelSets`), none when the runner (`$1`)
    /// is drained (SPEC §8) — checked with the claim, so a claim already waiting when the drain
    /// came takes nothing, in the same round trip.
    static let labelSetsUnlessDrained = """
        SELECT k FROM (\(ClaimSQL.queuedLabelSets)) AS sets
        WHERE NOT EXISTS (SELECT 1 FROM runners WHERE name = $1 AND draining)
        """

    /// The run of the first candidate in claim order (`LABELS` is the label-set filter) whose
    /// run row nobody holds, locked, as it stands after every commit before the lock. The claim
    /// index gives the order: no sort of the backlog.
    static let firstFreeCandidateRun = """
        SELECT r.id, r.spec, r.state FROM tasks t JOIN runs r ON r.id = t.run_id
        WHERE t.status = 'queued' AND LABELS
          AND (t.workspace IS NULL OR NOT EXISTS (SELECT 1 FROM locks l WHERE l.workspace = t.workspace))
        ORDER BY \(ClaimSQL.claimOrder)
        LIMIT 1
        FOR UPDATE OF r SKIP LOCKED
        """

    /// The run of the first candidate in claim order, locked or not.
    static let firstCandidateRun = """
        SELECT t.run_id FROM tasks t
        WHERE t.status = 'queued' AND LABELS
          AND (t.workspace IS NULL OR NOT EXISTS (SELECT 1 FROM locks l WHERE l.workspace = t.workspace))
        ORDER BY \(ClaimSQL.claimOrder)
        LIMIT 1
        """

    /// The first claimable task (SPEC §2: `queued`, workspace free, labels ⊆ the runner's) in
    /// claim order: highest priority first (SPEC §10), then oldest by `queued_at, run_id, position`.
    private static func claimOnce(runner: String, labels: [String], claimID: String?, now: Timestamp, _ tx: PostgresTransaction) async throws
        -> ClaimAttempt
    {
        // 0. The label sets of queued tasks this runner can take (`ClaimSQL`): the backlog it
        // cannot take is never read. One set (the usual case) is read in index order.
        var runnerBinds = PostgresBindings()
        runnerBinds.append(runner)
        let runnerLabels = Set(labels)
        let keys = try await tx.rows(PostgresQuery(unsafeSQL: Self.labelSetsUnlessDrained, binds: runnerBinds))
            .map { try $0.decode(String.self) }
            .filter { ClaimSQL.runner(runnerLabels, canTake: $0) }
        guard !keys.isEmpty else { return .nothingClaimable }
        func candidates(_ sql: String, runID: String? = nil) -> PostgresQuery {
            var binds = PostgresBindings()
            if keys.count == 1 { binds.append(keys[0]) } else { binds.append(keys) }
            if let runID { binds.append(runID) }
            let keyFilter = keys.count == 1 ? "t.labels_key = $1" : "t.labels_key = ANY($1)"
            return PostgresQuery(unsafeSQL: sql.replacingOccurrences(of: "LABELS", with: keyFilter), binds: binds)
        }

        // 1. The run of the oldest candidate, locked. First choice: the oldest candidate whose
        // run nobody else is changing right now. `FOR UPDATE OF r SKIP LOCKED` takes that run's
        // row without waiting, so concurrent claims on any number of nodes spread over
        // different runs. Only the run row is marked: a join row skipped for a locked run leaves
        // no lock behind (marking the task row too would keep the task rows of skipped
        // candidates locked until commit, and a claim holding those while it waits below could
        // deadlock with one holding their run).
        var run = try await tx.rows(candidates(Self.firstFreeCandidateRun)).first.map(runRow)
        if run == nil {
            // Every candidate's run is locked by someone: usually another change of that run (a
            // report, another claim) that commits within milliseconds. Skipping it would answer
            // "nothing" although work is queued, so wait for the oldest candidate's run row
            // instead, holding no lock while we wait.
            guard
                let oldest = try await tx.rows(candidates(Self.firstCandidateRun)).first?.decode(String.self)
            else { return .nothingClaimable }
            run = try await loadRunRow(tx, runID: oldest, forUpdate: true)
        }
        // 2. That run's oldest task still claimable (a fresh look: the run's previous holder may
        // just have committed), with its row locked by `FOR UPDATE OF t SKIP LOCKED`. Nobody
        // else can be taking it while we hold the run row; the task lock only makes sure. Its
        // row is read whole: the change starts from it.
        guard let run,
            let task = try await tx.rows(
                candidates(
                    """
                SELECT \(taskColumns) FROM tasks t
                WHERE t.run_id = $2 AND t.status = 'queued' AND LABELS
                  AND (t.workspace IS NULL OR NOT EXISTS (SELECT 1 FROM locks l WHERE l.workspace = t.workspace))
                ORDER BY t.priority DESC, t.queued_at, t.position
                LIMIT 1
                FOR UPDATE OF t SKIP LOCKED
                """, runID: run.id)
            ).first.map({ try Self.task($0, runID: run.id) })
        else { return .lookAgain }
        let taskID = task.id
        let committed: Committed<RunTask?>?
        do {
            // The run row is held since step 1; the task row since step 2.
            let loaded = Run(id: run.id, spec: run.spec, state: run.state, tasks: [task])
            committed = try await change(loaded: loaded, scope: .task(taskID, dependents: false), now: now, tx, lockingRun: false) {
                change in
                try change.claim(taskID: taskID, runner: runner, claimID: claimID)
                return change.committed.tasks.first { $0.id == taskID }
            }
        } catch is TransitionError {
            return .lookAgain
        }
        guard let claimed = committed?.compactMapValue({ $0 }) else { return .lookAgain }
        return .claimed(claimed)
    }

    /// The task this runner already took with this claim id and has not started yet, as it
    /// stands: answering the same claim twice changes nothing.
    private static func claimedBefore(_ tx: PostgresTransaction, runner: String, claimID: String) async throws -> Committed<RunTask>? {
        guard
            let (taskID, runID) = try await tx.rows(
                "SELECT id, run_id FROM tasks WHERE claim_id = \(claimID) AND runner = \(runner) AND status = 'dispatched'"
            ).first?.decode((String, String).self),
            let run = try await loadRun(tx, runID: runID, scope: .task(taskID, dependents: false), forUpdate: false),
            let task = run.tasks.first
        else { return nil }
        return Committed(value: task, record: RunRecord(run: run, lockHolders: try await lockHolders(tx, for: run)), events: [])
    }

    public func heartbeat(runner: String, taskIDs: [String], now: Timestamp) async throws -> [String] {
        guard !taskIDs.isEmpty else { return [] }
        let ids = Array(Set(taskIDs))
        let known = try await transaction(.write) { tx -> [String: HeartbeatRow] in
            // Task rows are locked in (run, position) order, the order a change of a run takes
            // them in, so a heartbeat and a change never wait on each other in a circle.
            try await tx.execute(
                """
                UPDATE tasks SET heartbeat_at = \(now.milliseconds)
                WHERE id IN (SELECT id FROM tasks
                             WHERE runner = \(runner) AND status IN ('dispatched', 'running', 'canceling') AND id = ANY(\(ids))
                             ORDER BY run_id, position FOR UPDATE)
                """)
            var known: [String: HeartbeatRow] = [:]
            for row in try await tx.rows("SELECT id, status, runner FROM tasks WHERE id = ANY(\(ids))") {
                let (id, status, holder) = try row.decode((String, String, String?).self)
                known[id] = HeartbeatRow(status: TaskStatus(rawValue: status), runner: holder)
            }
            return known
        }
        return taskIDs.filter { id in
            HeartbeatVerdict.mustStop(status: known[id]?.status, holder: known[id]?.runner, runner: runner)
        }
    }

    private enum ReleaseAttempt: Sendable {
        case free
        case released(WorkspaceLock)
        case lookAgain
    }

    public func releaseLock(workspace: String, now: Timestamp) async throws -> WorkspaceLock? {
        for _ in 0..<Self.claimAttempts {
            let attempt = try await transaction(.write) { tx -> ReleaseAttempt in
                guard
                    let seen = try await tx.rows(
                        "SELECT \(unescaped: Self.lockColumns) FROM locks WHERE workspace = \(workspace)"
                    ).first.map(Self.lock)
                else { return .free }
                // The holder's run row first, as every change of a run does; then the lock row,
                // which may have changed hands meanwhile.
                let holder = try await tx.rows("SELECT id FROM runs WHERE id = \(seen.runID) FOR UPDATE").first
                guard
                    let lock = try await tx.rows(
                        "SELECT \(unescaped: Self.lockColumns) FROM locks WHERE workspace = \(workspace) FOR UPDATE"
                    ).first.map(Self.lock)
                else { return .free }
                guard lock == seen else { return .lookAgain }
                if holder != nil {
                    _ = try await Self.change(
                        runID: lock.runID, scope: .task(lock.taskID, dependents: false), now: now, tx, lockingRun: false
                    ) { change in change.lockReleased(taskID: lock.taskID) }
                }
                try await tx.execute("DELETE FROM locks WHERE workspace = \(workspace) AND task_id = \(lock.taskID)")
                tx.notify(.claims)
                tx.notify(.run(lock.runID))
                return .released(lock)
            }
            switch attempt {
            case .free: return nil
            case .released(let lock): return lock
            case .lookAgain: continue
            }
        }
        return nil
    }
}

struct HeartbeatRow: Sendable {
    var status: TaskStatus?
    var runner: String?
}
