/// What a store can vouch for without reading anything: a value that changes whenever a row a
/// run's snapshot is rendered from (the run, its tasks, the workspace locks) has changed.
///
/// A reader takes the stamp *before* it reads the run; a writer's stamp moves only *after* its
/// transaction committed and before the writer is answered. So bytes rendered from a read and
/// kept under the stamp taken before it are current for as long as the stamp stays equal — a
/// stale pairing can only make the stamp look older than the bytes (a miss), never newer.
public struct SnapshotStamp: Equatable, Sendable {
    /// Moves with every committed change of the run's own row or its task rows.
    public let run: UInt64
    /// Moves with every committed change of the lock table: only snapshots that show lock
    /// holders (`blocked_by` of tasks with a workspace) depend on it.
    public let locks: UInt64

    public init(run: UInt64, locks: UInt64) {
        self.run = run
        self.locks = locks
    }
}
