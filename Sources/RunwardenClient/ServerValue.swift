/// Numbers a server answers, turned into what the runner and the CLI compute with without
/// trapping: a hostile or broken server (or a proxy in front of one) can answer any integer,
/// and Swift traps on overflow.
public enum ServerValue {
    /// A day is far more than any lease, wait or poll interval needs.
    public static let longestWait = 86_400

    /// At most ten years: enough for any `timeout_s`, and far from what `Task.sleep`'s
    /// nanosecond arithmetic can hold.
    public static let longestTimeout = 315_360_000

    /// `seconds` clamped to 0 … `limit`, as a Duration.
    public static func seconds(_ seconds: Int, atMost limit: Int = longestTimeout) -> Duration {
        .seconds(clamp(seconds, 0...limit))
    }

    public static func clamp(_ value: Int, _ range: ClosedRange<Int>) -> Int {
        min(max(value, range.lowerBound), range.upperBound)
    }

    /// The sum without trapping: saturates at `Int.max` / `Int.min`.
    public static func sum(_ values: [Int]) -> Int {
        values.reduce(0) { total, value in
            let (result, overflow) = total.addingReportingOverflow(value)
            return overflow ? (value > 0 ? Int.max : Int.min) : result
        }
    }
}
