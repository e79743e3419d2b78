import Foundation
import RunwardenCore

/// Encodes and decodes the JSON text kept in `spec`, `state`, `attempts` and `error` columns —
/// the same text the SQLite backend stores.
enum JSONColumn {
    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    static func decode<Value: Decodable>(_ type: Value.Type, _ text: String) throws -> Value {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

extension Timestamp {
    init?(column: Int64?) {
        guard let column else { return nil }
        self.init(milliseconds: column)
    }
}
