/// The answer to a log chunk (SPEC §9): where the next chunk must start.
public struct LogAppendAnswer: Codable, Sendable, Equatable {
    public var nextOffset: Int64

    public init(nextOffset: Int64) { self.nextOffset = nextOffset }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case nextOffset = "next_offset"
    }
}

/// One `event: log` frame of a task's log stream (SPEC §9).
public struct LogStreamChunk: Codable, Sendable, Equatable {
    public var attempt: Int
    /// Where `text` starts in the attempt's output.
    public var offset: Int64
    public var text: String

    public init(attempt: Int, offset: Int64, text: String) {
        self.attempt = attempt
        self.offset = offset
        self.text = text
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case attempt, offset, text
    }
}

/// Log text for the text routes: bytes that are not UTF-8 are replaced (U+FFFD), and a
/// character cut off at the end of the bytes is left for the next read instead of replaced.
public enum LogText {
    /// How many of `bytes` to answer now: all but an incomplete UTF-8 sequence at the end,
    /// unless `isLast` (no more bytes follow; it is then replaced).
    public static func answerable(_ bytes: [UInt8], isLast: Bool) -> Int {
        guard !isLast, !bytes.isEmpty else { return bytes.count }
        // Look back at most 3 bytes for the lead byte of the last sequence.
        var index = bytes.count - 1
        while index > 0, bytes.count - index < 4, bytes[index] & 0xC0 == 0x80 { index -= 1 }
        let lead = bytes[index]
        let length: Int
        switch lead {
        case 0xC0...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF7: length = 4
        default: return bytes.count  // ASCII, or not a lead byte: nothing is waiting for more
        }
        return bytes.count - index < length ? index : bytes.count
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
}
