import Foundation
import RunwardenCore
import RunwardenStore

/// The rendered bytes of recently read runs, so reading a run that has not changed does not
/// encode it again: rendering was half of a `GET /v1/runs/{id}`'s own CPU.
///
/// An entry is used only when everything its bytes were rendered from is still the same, as the
/// store just read it: the run's `version` (every visible change steps it), each task's
/// `heartbeat_at` (a heartbeat changes it without a version step) and the workspace lock
/// holders (`blocked_by`). So a hit is exactly what rendering would give — on every node.
///
/// A store that can vouch for a run without reading it (`RunStore.snapshotStamp`: SQLite, whose
/// writers are all in this process) lets a read skip the store altogether: bytes kept under the
/// stamp taken before their read are current while the stamp is equal. That read was 60 % of a
/// `GET /v1/runs/{id}` (wrk: 0.40 of `/healthz` with it, 0.95 without; BENCHMARKS.md).
///
/// Bounded like every cache here (`GenerationalCache`).
final class SnapshotCache: Sendable {
    /// What a snapshot is rendered from, besides what `version` already covers.
    struct Inputs: Equatable, Sendable {
        let version: Int
        let heartbeats: [Int64?]
        let lockHolders: [String: String]

        init(_ record: RunRecord) {
            version = record.run.state.version
            heartbeats = record.run.tasks.map { $0.state.heartbeatAt?.milliseconds }
            lockHolders = record.lockHolders
        }
    }

    private struct Entry {
        let inputs: Inputs
        let bytes: Data
        /// The store's stamp taken before the read these bytes were rendered from, if it has one.
        let stamp: SnapshotStamp?
        /// Whether the snapshot shows lock holders, and so depends on the locks' stamp too.
        let showsLocks: Bool

        func isCurrent(at stamp: SnapshotStamp) -> Bool {
            guard let rendered = self.stamp, rendered.run == stamp.run else { return false }
            return !showsLocks || rendered.locks == stamp.locks
        }
    }

    private let entries: GenerationalCache<Entry>

    init(capacity: Int = 1024) { entries = GenerationalCache(capacity: capacity) }

    /// The bytes of the run's snapshot if nothing changed since they were rendered, as far as
    /// the store's stamp, taken now, says — without reading the run.
    func bytes(runID: String, at stamp: SnapshotStamp) -> Data? {
        entries.entry(runID, where: { $0.isCurrent(at: stamp) })?.bytes
    }

    /// The run's snapshot (with its tasks) as JSON bytes, from the cache when nothing changed.
    /// `stamp` is the store's, taken before `record` was read.
    func bytes(of record: RunRecord, stamp: SnapshotStamp? = nil) -> Data {
        let inputs = Inputs(record)
        let id = record.run.id
        if let hit = entries.entry(id, where: { $0.inputs == inputs }) {
            if let stamp, hit.stamp != stamp { remember(hit.bytes, inputs, stamp, record) }
            return hit.bytes
        }
        let bytes = JSONValueEncoder.data(
            Snapshot.run(record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders))
        remember(bytes, inputs, stamp, record)
        return bytes
    }

    private func remember(_ bytes: Data, _ inputs: Inputs, _ stamp: SnapshotStamp?, _ record: RunRecord) {
        // A waiting run's `held_by` changes with other runs, which no stamp of its own follows;
        // it is read afresh until it holds a slot (and never waits again).
        if record.run.state.concurrencySlot == .waiting { return }
        let showsLocks = record.run.tasks.contains { $0.spec.workspace != nil }
        entries.remember(Entry(inputs: inputs, bytes: bytes, stamp: stamp, showsLocks: showsLocks), for: record.run.id)
    }
}
