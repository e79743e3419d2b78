import RunwardenCore
import Synchronization

/// Decoded values of one kind of JSON column, remembered by row id together with the exact
/// text they were decoded from.
///
/// Every read and every change of a run decodes the spec and state of the run and of all its
/// tasks; through Foundation's `JSONDecoder` that was 10–22 % of a request's server CPU (and
/// on a run of 1,000 tasks, 70 %). The text is still read from the database each time and
/// compared byte for byte with the remembered text, so a hit is exactly what decoding would
/// give: a row changed by another process or another server node simply misses.
///
/// Bounded: two generations of `capacity` entries; when the newer one fills, the older one is
/// dropped (an approximate LRU: what was used in the last generation is carried forward).
public final class DecodedColumnCache<Value: Codable & Sendable>: Sendable {
    private struct Entry {
        let text: String
        let value: Value
    }

    private struct Generations {
        var current: [String: Entry] = [:]
        var previous: [String: Entry] = [:]
    }

    private let capacity: Int
    private let generations = Mutex(Generations())

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// The value of `text`, the column of row `id`.
    public func decode(_ text: String, row id: String) throws -> Value {
        if let value = lookUp(text, row: id) { return value }
        let value = try JSONColumn.decode(Value.self, text)
        remember(value, text: text, row: id)
        return value
    }

    /// The column text of `value` for row `id`; the next read of that text is a hit.
    public func encode(_ value: Value, row id: String) throws -> String {
        let text = try JSONColumn.encode(value)
        remember(value, text: text, row: id)
        return text
    }

    private func lookUp(_ text: String, row id: String) -> Value? {
        generations.withLock { generations in
            if let entry = generations.current[id] {
                return entry.text.utf8.elementsEqual(text.utf8) ? entry.value : nil
            }
            guard let entry = generations.previous[id], entry.text.utf8.elementsEqual(text.utf8) else { return nil }
            Self.insert(entry, row: id, into: &generations, capacity: capacity)
            return entry.value
        }
    }

    private func remember(_ value: Value, text: String, row id: String) {
        generations.withLock { Self.insert(Entry(text: text, value: value), row: id, into: &$0, capacity: capacity) }
    }

    private static func insert(_ entry: Entry, row id: String, into generations: inout Generations, capacity: Int) {
        if generations.current.count >= capacity, generations.current[id] == nil {
            generations.previous = generations.current
            generations.current = [:]
            generations.current.reserveCapacity(capacity)
        }
        generations.current[id] = entry
    }
}

extension JSONColumn {
    // One cache per column kind for the whole process: entries are checked against the stored
    // text, so stores of different databases can share them safely. 4,096 rows each at most.
    public static let runSpecs = DecodedColumnCache<RunSpec>(capacity: 2048)
    public static let runStates = DecodedColumnCache<RunState>(capacity: 2048)
    public static let taskSpecs = DecodedColumnCache<TaskSpec>(capacity: 2048)
    public static let taskStates = DecodedColumnCache<TaskState>(capacity: 2048)
}
