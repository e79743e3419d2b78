import RunwardenCore

/// Decoded values of one kind of JSON column, remembered by row id together with the exact
/// text they were decoded from.
///
/// Every read and every change of a run decodes the spec and state of the run and of all its
/// tasks; through Foundation's `JSONDecoder` that was 10–22 % of a request's server CPU (and
/// on a run of 1,000 tasks, 70 %). The text is still read from the database each time and
/// compared byte for byte with the remembered text, so a hit is exactly what decoding would
/// give: a row changed by another process or another server node simply misses.
///
/// Bounded by a `GenerationalCache`.
public final class DecodedColumnCache<Value: Codable & Sendable>: Sendable {
    private struct Entry {
        let text: String
        let value: Value
    }

    private let entries: GenerationalCache<Entry>

    public init(capacity: Int) {
        entries = GenerationalCache(capacity: capacity)
    }

    /// The value of `text`, the column of row `id`.
    public func decode(_ text: String, row id: String) throws -> Value {
        if let hit = entries.entry(id, where: { $0.text.utf8.elementsEqual(text.utf8) }) { return hit.value }
        let value = try JSONColumn.decode(Value.self, text)
        entries.remember(Entry(text: text, value: value), for: id)
        return value
    }

    /// The column text of `value` for row `id`; the next read of that text is a hit.
    public func encode(_ value: Value, row id: String) throws -> String {
        let text = try JSONColumn.encode(value)
        entries.remember(Entry(text: text, value: value), for: id)
        return text
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
