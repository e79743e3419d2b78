import Foundation
import RunwardenCore

/// Encodes and decodes the JSON text every backend keeps in its `spec`, `state`, `attempts`
/// and `error` columns — one format, so the backends store the same text.
public enum JSONColumn {
    public static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    public static func decode<Value: Decodable>(_ type: Value.Type, _ text: String) throws -> Value {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// A task's `dependents` column: most tasks have none, and their `[]` is not worth a decoder
    /// on every read of the task.
    public static func dependents(_ text: String) throws -> [String] {
        text == "[]" ? [] : try decode([String].self, text)
    }
}

extension Timestamp {
    /// A nullable millisecond column.
    public init?(column: Int64?) {
        guard let column else { return nil }
        self.init(milliseconds: column)
    }
}
