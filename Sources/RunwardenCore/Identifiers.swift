import Synchronization

/// Ids carry a type prefix and sort by creation time (SPEC §2): `run_` + 10 characters of
/// millisecond time + 16 characters (80 bits) of randomness, in Crockford's base32 — a ULID
/// without dashes. Within one millisecond the random part counts up, so ids made by one
/// process sort in the order they were made.
public enum IDPrefix: String, Sendable {
    case run, task, evt, wh, dlv, rtk
}

public enum Identifier {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    private static let randomMask: UInt128 = (1 << 80) - 1
    private static let last = Mutex<(milliseconds: Int64, random: UInt128)>((0, 0))

    public static func make(_ prefix: IDPrefix, at time: Timestamp) -> String {
        let (milliseconds, random) = last.withLock { last -> (Int64, UInt128) in
            if time.milliseconds <= last.milliseconds, last.random < randomMask {
                last.random += 1
            } else {
                var generator = SystemRandomNumberGenerator()
                // The top bit stays clear so a millisecond has room to count up.
                let fresh = (UInt128(generator.next() as UInt64) << 64 | UInt128(generator.next() as UInt64)) & (randomMask >> 1)
                last = (max(time.milliseconds, last.milliseconds), fresh)
            }
            return last
        }
        return render(prefix, milliseconds: milliseconds, random: random)
    }

    /// An id from the given random source, without the per-millisecond counter (deterministic
    /// for a seeded generator).
    public static func make(_ prefix: IDPrefix, at time: Timestamp, using generator: inout some RandomNumberGenerator) -> String {
        let random = (UInt128(generator.next() as UInt64) << 64 | UInt128(generator.next() as UInt64)) & randomMask
        return render(prefix, milliseconds: time.milliseconds, random: random)
    }

    private static func render(_ prefix: IDPrefix, milliseconds: Int64, random: UInt128) -> String {
        var bytes = [UInt8](repeating: 0, count: 26)
        var clock = UInt64(max(0, milliseconds))
        for index in stride(from: 9, through: 0, by: -1) {
            bytes[index] = alphabet[Int(clock & 31)]
            clock >>= 5
        }
        var bits = random
        for index in stride(from: 25, through: 10, by: -1) {
            bytes[index] = alphabet[Int(bits & 31)]
            bits >>= 5
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
