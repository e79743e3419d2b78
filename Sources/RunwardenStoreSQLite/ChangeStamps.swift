import GRDB
import RunwardenStore
import Synchronization

/// The `SnapshotStamp`s of this store: every writer of the file is this process (one server per
/// SQLite file), so the store knows of every change without reading.
///
/// Temporary triggers on the writer connection report each changed run and lock row while a
/// transaction runs (whatever code wrote it — no write path can forget); `GroupCommit` publishes
/// them once the transaction has ended and before it answers any of its writers.
///
/// Bounded: stamps live in two generations of `capacity` runs each. A run in neither reads the
/// `floor`, which is at least the stamp of every run dropped, so a stamp still only moves forward
/// and moves with every change — all `SnapshotStamp` asks.
final class ChangeStamps: Sendable {
    private struct State {
        var clock: UInt64 = 0
        var floor: UInt64 = 0
        var locks: UInt64 = 0
        var current: [String: UInt64] = [:]
        var previous: [String: UInt64] = [:]
        /// Changed in the transaction in progress (the writer's thread), not yet published.
        var pendingRuns: Set<String> = []
        var pendingLocks = false
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int = 50_000) { self.capacity = capacity }

    func stamp(runID: String) -> SnapshotStamp {
        state.withLock { state in
            SnapshotStamp(run: state.current[runID] ?? state.previous[runID] ?? state.floor, locks: state.locks)
        }
    }

    /// Moves the stamps of what changed since the last call. Called after a transaction ended —
    /// committed or rolled back (a rolled-back change moves a stamp for nothing: a miss, no harm).
    func publish() {
        state.withLock { state in
            if state.pendingLocks {
                state.locks &+= 1
                state.pendingLocks = false
            }
            for runID in state.pendingRuns {
                state.clock &+= 1
                if state.current.count >= capacity, state.current[runID] == nil {
                    state.previous = state.current
                    state.current = [:]
                    state.floor = state.clock  // above every stamp just dropped
                }
                state.current[runID] = state.clock
            }
            state.pendingRuns.removeAll(keepingCapacity: true)
        }
    }

    func noteChanged(_ runID: String) { _ = state.withLock { $0.pendingRuns.insert(runID) } }
    private func noteLocksChanged() { state.withLock { $0.pendingLocks = true } }

    /// Installs the triggers on `db`, the writer connection (temporary triggers and functions
    /// belong to the connection that made them).
    func install(on db: Database) throws {
        db.add(
            function: DatabaseFunction("runwarden_run_changed", argumentCount: 1, pure: false) { [self] values in
                if let runID = String.fromDatabaseValue(values[0]) { noteChanged(runID) }
                return nil
            })
        db.add(
            function: DatabaseFunction("runwarden_locks_changed", argumentCount: 0, pure: false) { [self] _ in
                noteLocksChanged()
                return nil
            })
        for (table, runColumn) in [("runs", "id"), ("tasks", "run_id")] {
            for (operation, row) in [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")] {
                try db.execute(
                    sql: """
                        CREATE TEMP TRIGGER IF NOT EXISTS runwarden_\(table)_\(operation.lowercased())
                        AFTER \(operation) ON main.\(table)
                        BEGIN SELECT runwarden_run_changed(\(row).\(runColumn)); END
                        """)
            }
        }
        for operation in ["INSERT", "UPDATE", "DELETE"] {
            try db.execute(
                sql: """
                    CREATE TEMP TRIGGER IF NOT EXISTS runwarden_locks_\(operation.lowercased())
                    AFTER \(operation) ON main.locks BEGIN SELECT runwarden_locks_changed(); END
                    """)
        }
    }
}
