import Foundation

/// Webhook secrets in the Standard Webhooks form: `whsec_` + base64 of the signing key.
public enum WebhookSecret {
    public static let prefix = "whsec_"

    /// A new secret with a 24-byte random key.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<24).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return prefix + Data(key).base64EncodedString()
    }

    /// How long a given key may be, in bytes (Standard Webhooks: 24 to 64).
    public static let keyBytes = 24...64

    /// Why a secret someone gave (`secret`, `callback_secret`) is refused; nil when it is fine.
    public static func problem(with secret: String) -> String? {
        guard let key = key(of: secret) else { return "must be whsec_ followed by a base64 key" }
        guard keyBytes.contains(key.count) else {
            return "must be whsec_ followed by the base64 of \(keyBytes.lowerBound) to \(keyBytes.upperBound) bytes, not \(key.count)"
        }
        return nil
    }

    /// The signing key of a well-formed secret; nil for anything else.
    public static func key(of secret: String) -> Data? {
        guard secret.hasPrefix(prefix), let key = Data(base64Encoded: String(secret.dropFirst(prefix.count))),
            !key.isEmpty
        else { return nil }
        return key
    }
}

/// Which event types a subscription receives: `*`, `run.*`, `task.*`, `runner.*`, or exact types.
public enum EventFilter {
    public static let defaultPatterns = ["run.*"]

    public static func matches(_ patterns: [String], type: String) -> Bool {
        patterns.contains { pattern in
            if pattern == "*" { return true }
            if pattern.hasSuffix(".*") { return type.hasPrefix(String(pattern.dropLast())) }
            return pattern == type
        }
    }

    /// Every pattern a subscription may name.
    public static func isValid(_ pattern: String) -> Bool {
        ["*", "run.*", "task.*", "runner.*"].contains(pattern) || EventType.all.contains(pattern)
    }
}

/// A validated `POST /v1/webhooks` body.
public struct WebhookDefinition: Sendable, Equatable {
    public var url: String
    public var events: [String]
    public var secret: String?
    public var description: String?

    /// `egress` is the server's webhook egress policy: a URL naming a denied address is refused.
    public static func parse(_ body: JSONValue, egress: EgressPolicy = .standard) -> Result<WebhookDefinition, ValidationFailure> {
        var reader = FieldReader()
        guard let object = reader.object(body, at: "", allowed: ["url", "events", "secret", "description"]) else {
            return .failure(ValidationFailure(reader.errors))
        }
        let url = reader.string(object, "url", at: "", required: true, maxLength: 2048)
        if let url, URLRules.httpURL(url) == nil {
            reader.fail("url", "must be an absolute http:// or https:// URL")
        } else if let url, let problem = egress.problem(withURL: url) {
            reader.fail("url", problem)
        }
        let events = reader.stringList(object, "events", at: "") ?? EventFilter.defaultPatterns
        if object["events"] != nil, events.isEmpty { reader.fail("events", "must name at least one event type or pattern") }
        for (index, pattern) in events.enumerated() where !EventFilter.isValid(pattern) {
            reader.fail("events[\(index)]", "\"\(pattern)\" is not an event type or pattern such as run.*, task.*, runner.* or task.failed")
        }
        let secret = reader.string(object, "secret", at: "", maxLength: 256)
        if let secret, let problem = WebhookSecret.problem(with: secret) { reader.fail("secret", problem) }
        let description = reader.string(object, "description", at: "", maxLength: 500)
        guard reader.errors.isEmpty, let url else { return .failure(ValidationFailure(reader.errors)) }
        return .success(WebhookDefinition(url: url, events: events, secret: secret, description: description))
    }
}

enum URLRules {
    /// The URL when it is absolute http(s) with a host.
    static func httpURL(_ text: String) -> URL? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else { return nil }
        return url
    }
}

/// Parses `--webhook-retry 5s,5m,30m,...`: the delays between attempts after the first.
public enum RetrySchedule {
    public static let standard = "5s,5m,30m,2h,5h,10h,10h"
    /// The longest delay the schedule may hold (`168h`, a week): far beyond any real
    /// schedule, and small enough that no jitter or date arithmetic on it can overflow.
    public static let longestDelayMilliseconds: Int64 = 7 * 24 * 3_600_000

    /// The delays in milliseconds; nil unless every part is a positive duration of at most
    /// `longestDelayMilliseconds`.
    public static func parse(_ text: String) -> [Int64]? {
        let parts = text.split(separator: ",").map { Units.milliseconds(String($0)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! <= longestDelayMilliseconds }) else { return nil }
        return parts.compactMap { $0 }
    }

    /// `delay` ±10 %, which spreads out the retries of deliveries that failed together.
    /// Defined for any value (a schedule can be set in code too): never traps.
    public static func jittered(_ delay: Int64) -> Int64 {
        let spread = max(delay, 0) / 10
        let (sum, overflow) = delay.addingReportingOverflow(Int64.random(in: -spread...spread))
        return overflow ? .max : sum
    }
}
