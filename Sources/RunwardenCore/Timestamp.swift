import Foundation

/// A point in time with millisecond precision — the precision of every timestamp in the API,
/// kept as an integer so that stored and rendered values round-trip exactly.
public struct Timestamp: Sendable, Hashable, Comparable, Codable {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public init(_ date: Date) {
        // Round to the microsecond first: `.002` parsed from text is stored as 0.0019999… seconds.
        let microseconds = (date.timeIntervalSince1970 * 1_000_000).rounded()
        self.milliseconds = Int64((microseconds / 1000).rounded(.down))
    }

    public var date: Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public func adding(seconds: Int) -> Timestamp { Timestamp(milliseconds: milliseconds + Int64(seconds) * 1000) }
    public func adding(milliseconds delta: Int64) -> Timestamp { Timestamp(milliseconds: milliseconds + delta) }

    /// `2026-01-01T00:00:00.000Z`
    public var iso8601: String {
        let seconds = milliseconds.floorDiv(1000)
        let millis = milliseconds - seconds * 1000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(millis))
    }

    /// Accepts ISO 8601 / RFC 3339 with or without fractional seconds and with any UTC offset.
    public init?(iso8601 text: String) {
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
