import Foundation

/// Per-runner tokens (SPEC §8): `rwr_` secrets, each limited to runner names (glob patterns) and
/// task labels, until an optional expiry. Only a SHA-256 of the secret is ever stored.

/// What a per-runner token may do: act as the runners its `runnerNames` patterns allow (all
/// when nil) and take only tasks whose labels are among its `labels` (any when nil).
public struct RunnerTokenScope: Sendable, Equatable {
    public var runnerNames: [String]?
    public var labels: [String]?

    public init(runnerNames: [String]?, labels: [String]?) {
        self.runnerNames = runnerNames
        self.labels = labels
    }

    public func allows(runner name: String) -> Bool {
        guard let runnerNames else { return true }
        return runnerNames.contains { RunnerNamePattern.matches($0, name) }
    }

    /// The labels a claim under this token offers: the runner's own, within the token's.
    public func labels(offered: Set<String>) -> Set<String> {
        guard let labels else { return offered }
        return offered.intersection(labels)
    }
}

/// Glob patterns over runner names: `*` any run of characters, `?` one; everything else itself.
public enum RunnerNamePattern {
    public static let rule = "must be 1 to 128 letters, digits, '.', '_', '-', '*' or '?'"

    private static let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-*?".utf8)

    public static func isValid(_ pattern: String) -> Bool {
        (1...128).contains(pattern.utf8.count) && pattern.utf8.allSatisfy(allowed.contains)
    }

    /// Whether `name` matches `pattern`: iterative, with one backtrack point for the last `*`,
    /// so a hostile pattern costs at most length × length steps (both at most 128).
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.utf8)
        let n = Array(name.utf8)
        var (i, j) = (0, 0)
        var star: (pattern: Int, name: Int)?
        while j < n.count {
            if i < p.count, p[i] == UInt8(ascii: "?") || p[i] == n[j] {
                i += 1
                j += 1
            } else if i < p.count, p[i] == UInt8(ascii: "*") {
                star = (i, j)
                i += 1
            } else if let last = star {
                i = last.pattern + 1
                j = last.name + 1
                star = (last.pattern, last.name + 1)
            } else {
                return false
            }
        }
        while i < p.count, p[i] == UInt8(ascii: "*") { i += 1 }
        return i == p.count
    }
}

/// A per-runner token as the store keeps it: never the secret, only its digest.
public struct RunnerToken: Sendable, Equatable {
    public var id: String
    /// Lower-case hex SHA-256 of the secret.
    public var digest: String
    public var description: String
    public var scope: RunnerTokenScope
    public var expiresAt: Timestamp?
    public var createdAt: Timestamp

    public init(id: String, digest: String, description: String, scope: RunnerTokenScope, expiresAt: Timestamp?, createdAt: Timestamp) {
        self.id = id
        self.digest = digest
        self.description = description
        self.scope = scope
        self.expiresAt = expiresAt
        self.createdAt = createdAt
    }

    public func isExpired(at now: Timestamp) -> Bool { expiresAt.map { $0 <= now } ?? false }

    /// The prefix that tells a per-runner token from the shared ones.
    public static let prefix = "rwr_"

    /// A new secret: `rwr_` and 32 random bytes in hex.
    public static func generateSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + (0..<32).map { _ in
            let byte = UInt8.random(in: .min ... .max, using: &generator)
            return (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }
}

/// A validated `POST /v1/runner-tokens` body.
public struct RunnerTokenDefinition: Sendable, Equatable {
    public var description: String
    public var scope: RunnerTokenScope
    public var expiresAt: Timestamp?

    /// `now`: an `expires_at` must lie after it.
    public static func parse(_ body: JSONValue, now: Timestamp) -> Result<RunnerTokenDefinition, ValidationFailure> {
        var reader = FieldReader()
        guard reader.object(body, at: "", allowed: ["description", "runner_names", "labels", "expires_at"]) != nil else {
            return .failure(ValidationFailure(reader.errors))
        }
        let description = reader.string(body, "description", at: "", required: true, maxLength: 500)
        let names = reader.stringList(body, "runner_names", at: "")
        if let names {
            if names.isEmpty { reader.fail("runner_names", "must name at least one pattern, or be left out to allow every name") }
            if names.count > 100 { reader.fail("runner_names", "must list at most 100 patterns") }
            for (index, pattern) in names.enumerated() where !RunnerNamePattern.isValid(pattern) {
                reader.fail("runner_names[\(index)]", RunnerNamePattern.rule)
            }
        }
        let labels = reader.stringList(body, "labels", at: "")
        if let labels, labels.count > 100 { reader.fail("labels", "must list at most 100 labels") }
        if let labels, labels.contains(where: { $0.count > 128 }) { reader.fail("labels", "must be labels of at most 128 characters") }
        var expiresAt: Timestamp?
        if let text = reader.string(body, "expires_at", at: "", maxLength: 64) {
            if let time = Timestamp(iso8601: text) {
                if time <= now { reader.fail("expires_at", "must be in the future") } else { expiresAt = time }
            } else {
                reader.fail("expires_at", "must be an ISO 8601 timestamp such as 2026-01-01T00:00:00Z")
            }
        }
        guard reader.errors.isEmpty, let description else { return .failure(ValidationFailure(reader.errors)) }
        return .success(
            RunnerTokenDefinition(description: description, scope: RunnerTokenScope(runnerNames: names, labels: labels), expiresAt: expiresAt))
    }
}
