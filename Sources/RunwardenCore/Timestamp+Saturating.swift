/// Timestamp arithmetic for delays that come from outside — a receiver's `Retry-After`, a
/// configured retry schedule with jitter — where the plain `adding(milliseconds:)` would trap
/// on overflow and take the server down (again on every restart, while the row stays due).
extension Timestamp {
    /// `delta` milliseconds later (earlier when negative), stopping at the ends of the range.
    public func adding(saturatingMilliseconds delta: Int64) -> Timestamp {
        let (sum, overflow) = milliseconds.addingReportingOverflow(delta)
        guard overflow else { return Timestamp(milliseconds: sum) }
        return Timestamp(milliseconds: delta > 0 ? .max : .min)
    }
}

extension Duration {
    /// Whole milliseconds, saturating instead of trapping for absurd durations.
    public var saturatingMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { return seconds > 0 ? .max : .min }
        let (sum, overflowed) = whole.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        return overflowed ? (seconds > 0 ? .max : .min) : sum
    }
}
