/// Ids carry a type prefix and sort by creation time (SPEC §2): `run_` + 10 characters of
/// millisecond time + 16 random characters, in Crockford's base32 (a ULID without dashes).
public enum IDPrefix: String, Sendable {
    case run, task, evt, wh, dlv
}

public enum Identifier {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(_ prefix: IDPrefix, at time: Timestamp) -> String {
        var generator = SystemRandomNumberGenerator()
        return make(prefix, at: time, using: &generator)
    }

    public static func make(_ prefix: IDPrefix, at time: Timestamp, using generator: inout some RandomNumberGenerator) -> String {
        var bytes = [UInt8](repeating: 0, count: 26)
        var clock = UInt64(max(0, time.milliseconds))
        for index in stride(from: 9, through: 0, by: -1) {
            bytes[index] = alphabet[Int(clock & 31)]
            clock >>= 5
        }
        var random = generator.next() as UInt64
        for index in 10..<26 {
            bytes[index] = alphabet[Int(random & 31)]
            random >>= 5
            if index == 21 { random = generator.next() }
        }
        return prefix.rawValue + "_" + String(decoding: bytes, as: UTF8.self)
    }

    /// True when `id` has the given prefix and a well-formed body; used to answer a malformed id
    /// with the same typed not-found as an unknown one without touching the store.
    public static func isWellFormed(_ id: String, _ prefix: IDPrefix) -> Bool {
        let utf8 = Array(id.utf8)
        let head = prefix.rawValue.utf8.count + 1
        guard utf8.count == head + 26, id.hasPrefix(prefix.rawValue + "_") else { return false }
        return utf8[head...].allSatisfy { alphabet.contains($0) }
    }
}
