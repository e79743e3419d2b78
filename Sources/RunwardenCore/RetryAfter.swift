import Foundation

/// A receiver's `Retry-After` (SPEC §3, §6): how long it asks us to wait before trying again.
/// Whatever it sends, the answer is a wait of 0 s … 24 h, or nil — and nil means the normal
/// retry schedule applies.
public enum RetryAfter {
    /// The longest wait a receiver can ask for. A receiver that wants more is still asked
    /// again after a day; one that is gone for good answers `410 Gone`.
    public static let maximumMilliseconds: Int64 = 24 * 3_600_000

    /// Milliseconds to wait from `now`: delay-seconds (digits, leniently with a sign or a
    /// fraction) or an HTTP date, clamped to 0 … `maximumMilliseconds`; nil for anything else.
    public static func milliseconds(_ value: String, now: Timestamp) -> Int64? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = seconds(text) {
            // In floating point: "99999999999999999" seconds is past Int64 in milliseconds.
            let requested = (seconds * 1000).rounded(.up)
            return Int64(min(max(requested, 0), Double(maximumMilliseconds)))
        }
        if let date = HTTPDate.milliseconds(text) {
            return clamp(date.subtractingReportingOverflow(now.milliseconds))
        }
        return nil
    }

    /// `[+-]digits[.digits]` as a number; nil for any other text (so no `inf`, `nan`, `1e9`
    /// or hex reaches `Double`'s parser).
    private static func seconds(_ text: String) -> Double? {
        var body = Substring(text)
        if body.first == "+" || body.first == "-" { body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.count <= 2,
            parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } })
        else { return nil }
        return Double(text)
    }

    private static func clamp(_ difference: (partialValue: Int64, overflow: Bool)) -> Int64 {
        // An overflowing difference is a date absurdly far ahead (the clock cannot be that far behind).
        if difference.overflow { return maximumMilliseconds }
        return min(max(difference.partialValue, 0), maximumMilliseconds)
    }
}
