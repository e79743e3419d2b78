import Foundation
import RunwardenCore
import RunwardenStore
import Synchronization

/// The rendered bytes of recently read runs, so reading a run that has not changed does not
/// encode it again: rendering was half of a `GET /v1/runs/{id}`'s own CPU.
///
/// An entry is used only when everything its bytes were rendered from is still the same, as the
/// store just read it: the run's `version` (every visible change steps it), each task's
/// `heartbeat_at` (a heartbeat changes it without a version step) and the workspace lock
/// holders (`blocked_by`). So a hit is exactly what rendering would give — on every node.
///
/// Bounded like `DecodedColumnCache`: two generations of `capacity` entries.
final class SnapshotCache: Sendable {
    /// What a snapshot is rendered from, besides what `version` already covers.
    struct Inputs: Equatable {
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

    private struct Generations {
        var current: [String: Entry] = [:]
        var previous: [String: Entry] = [:]
    }

    private let capacity: Int
    private let generations = Mutex(Generations())

    init(capacity: Int = 1024) { self.capacity = capacity }

    /// The run's snapshot (with its tasks) as JSON bytes, from the cache when nothing changed.
    func bytes(of record: RunRecord) -> Data {
        let inputs = Inputs(record)
        let id = record.run.id
        if let hit = lookUp(id, inputs) { return hit }
        let bytes = JSONValueEncoder.data(Snapshot.run(record.run, lockHolders: record.lockHolders))
        remember(id, Entry(inputs: inputs, bytes: bytes))
        return bytes
    }

    private func lookUp(_ id: String, _ inputs: Inputs) -> Data? {
        generations.withLock { generations in
            if let entry = generations.current[id] { return entry.inputs == inputs ? entry.bytes : nil }
            guard let entry = generations.previous[id], entry.inputs == inputs else { return nil }
            generations.current[id] = entry  // used again: carried into this generation
            return entry.bytes
        }
    }

    private func remember(_ id: String, _ entry: Entry) {
        generations.withLock { generations in
            if generations.current.count >= capacity {
                generations.previous = generations.current
                generations.current = [:]
            }
            generations.current[id] = entry
        }
    }
}
