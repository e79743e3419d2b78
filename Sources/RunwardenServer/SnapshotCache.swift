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
    }

    private let entries: GenerationalCache<Entry>

    init(capacity: Int = 1024) { entries = GenerationalCache(capacity: capacity) }

    /// The run's snapshot (with its tasks) as JSON bytes, from the cache when nothing changed.
    func bytes(of record: RunRecord) -> Data {
        let inputs = Inputs(record)
        let id = record.run.id
        if let hit = entries.entry(id, where: { $0.inputs == inputs }) { return hit.bytes }
        let bytes = JSONValueEncoder.data(Snapshot.run(record.run, lockHolders: record.lockHolders))
        entries.remember(Entry(inputs: inputs, bytes: bytes), for: id)
        return bytes
    }
}
