import Foundation

/// A point in time with millisecond precision — the precision of every timestamp in the API,
/// kept as an integer so that stored and rendered values round-trip exactly.
public struct Timestamp: Sendable, Hashable, Comparable, Codable {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    // Pinned: stored `state` columns hold timestamps as `{"milliseconds": N}`.
    enum CodingKeys: String, CodingKey { case milliseconds }

    public init(_ date: Date) {
        // Round to the microsecond first: `.002` parsed from text is stored as 0.0019999… seconds.
        let microseconds = (date.timeIntervalSince1970 * 1_000_000).rounded()
        self.milliseconds = Int64((microseconds / 1000).rounded(.down))
    }

    public var date: Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public func adding(seconds: Int) -> Timestamp { Timestamp(milliseconds: milliseconds + Int64(seconds) * 1000) }
    public func adding(milliseconds delta: Int64) -> Timestamp { Timestamp(milliseconds: milliseconds + delta) }

    /// `2026-01-01T00:00:00.000Z`. Written digit by digit: every snapshot renders several
    /// timestamps per task, and `String(format:)` (NSString, varargs) was 7 % of a read.
    public var iso8601: String {
        let seconds = milliseconds.floorDiv(1000)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(unsafeUninitializedCapacity: 32) { buffer in
            var end = 0
            // `value` zero-padded to `width` digits (more if it has more, as `%04d` did), then `separator`.
            func put(_ value: Int, width: Int, then separator: Unicode.Scalar) {
                var count = 0
                var rest = abs(value)
                repeat {
                    count += 1
                    rest /= 10
                } while rest > 0
                count = max(count, width)
                if value < 0 {
                    buffer[end] = UInt8(ascii: "-")
                    end += 1
                }
                rest = abs(value)
                for position in stride(from: end + count - 1, through: end, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                end += count
                buffer[end] = UInt8(ascii: separator)
                end += 1
            }
            put(Int(parts.tm_year) + 1900, width: 4, then: "-")
            put(Int(parts.tm_mon) + 1, width: 2, then: "-")
            put(Int(parts.tm_mday), width: 2, then: "T")
            put(Int(parts.tm_hour), width: 2, then: ":")
            put(Int(parts.tm_min), width: 2, then: ":")
            put(Int(parts.tm_sec), width: 2, then: ".")
            put(Int(milliseconds - seconds * 1000), width: 3, then: "Z")
            return end
        }
    }

    /// Accepts ISO 8601 / RFC 3339 with or without fractional seconds and with any UTC offset;
    /// `t` and `z` in lower case too, as RFC 3339 §5.6 allows.
    public init?(iso8601 text: String) {
        let text = text.uppercased()
        if let date = try? Date(text, strategy: Self.withFraction) {
            self.init(date)
        } else if let date = try? Date(text, strategy: Self.withoutFraction) {
            self.init(date)
        } else {
            return nil
        }
    }

    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()
}

extension Int64 {
    fileprivate func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }
}
