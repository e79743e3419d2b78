import Hummingbird
import RunwardenCore

/// Typed reading of query parameters; a malformed value is a `422 validation_failed`.
extension Request {
    func query(_ name: String) -> String? {
        uri.queryParameters.get(name)
    }

    /// `wait=SECONDS` (fractions allowed), capped at `maximum`; zero when absent.
    func waitDuration(maximum: Duration = .seconds(60)) throws -> Duration {
        guard let text = query("wait") else { return .zero }
        guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
            throw RunwardenError.invalidQuery("wait", "must be a number of seconds, not \"\(text)\"")
        }
        // Capped before converting: `wait=1e300` is just a long wait, not an overflow.
        let cappedSeconds = min(seconds, Double(maximum.components.seconds))
        return .milliseconds(Int64(cappedSeconds * 1000))
    }

    func integerQuery(_ name: String, minimum: Int) throws -> Int? {
        guard let text = query(name) else { return nil }
        guard let value = Int(text), value >= minimum else {
            throw RunwardenError.invalidQuery(name, "must be an integer of at least \(minimum), not \"\(text)\"")
        }
        return value
    }

    /// `true` or `false`; `defaultValue` when absent.
    func booleanQuery(_ name: String, default defaultValue: Bool) throws -> Bool {
        switch query(name) {
        case nil: return defaultValue
        case "true": return true
        case "false": return false
        case let text?: throw RunwardenError.invalidQuery(name, "must be true or false, not \"\(text)\"")
        }
    }

    /// `limit`, defaulting to `defaultValue`; above `maximum` it is taken as `maximum` (SPEC §2).
    func limit(default defaultValue: Int, maximum: Int) throws -> Int {
        min(try integerQuery("limit", minimum: 1) ?? defaultValue, maximum)
    }
}
