import Synchronization

/// A bounded map from an id to an entry the caller checks before using it: two generations of
/// `capacity` entries; when the newer one fills, the older one is dropped (an approximate LRU:
/// what was used in the last generation is carried forward). The home of that rule for every
/// cache here (decoded JSON columns, rendered snapshots).
public final class GenerationalCache<Entry: Sendable>: Sendable {
    private struct Generations {
        var current: [String: Entry] = [:]
        var previous: [String: Entry] = [:]
    }

    private let capacity: Int
    private let generations = Mutex(Generations())

    public init(capacity: Int) { self.capacity = capacity }

    /// The entry of `id` when `isCurrent` accepts it (it was made from what is there now).
    public func entry(_ id: String, where isCurrent: (Entry) -> Bool) -> Entry? {
        generations.withLock { generations in
            if let entry = generations.current[id] { return isCurrent(entry) ? entry : nil }
            guard let entry = generations.previous[id], isCurrent(entry) else { return nil }
            Self.insert(entry, id, into: &generations, capacity: capacity)
            return entry
        }
    }

    public func remember(_ entry: Entry, for id: String) {
        generations.withLock { Self.insert(entry, id, into: &$0, capacity: capacity) }
    }

    private static func insert(_ entry: Entry, _ id: String, into generations: inout Generations, capacity: Int) {
        if generations.current.count >= capacity, generations.current[id] == nil {
            generations.previous = generations.current
            generations.current = [:]
            generations.current.reserveCapacity(capacity)
        }
        generations.current[id] = entry
    }
}
