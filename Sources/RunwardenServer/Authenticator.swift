import Crypto
import Foundation
import Hummingbird
import RunwardenCore

/// Checks bearer tokens (SPEC §2): the client token may create, read, cancel and release
/// locks; the runner token may only claim, heartbeat and report. With no tokens configured
/// every caller is trusted (the server then listens on loopback only).
struct Authenticator: Sendable {
    private let clientDigest: SHA256Digest?
    private let runnerDigest: SHA256Digest?

    init(clientToken: String?, runnerToken: String?) {
        clientDigest = clientToken.map { SHA256.hash(data: Array($0.utf8)) }
        runnerDigest = runnerToken.map { SHA256.hash(data: Array($0.utf8)) }
    }

    var isOpen: Bool { clientDigest == nil && runnerDigest == nil }

    /// Who the caller is, once its token proves the role the route needs.
    struct Caller: Sendable {
        var role: TokenRole
        var token: String?
        /// A per-runner token's limits (SPEC §8); nil for the shared tokens and open mode.
        var runnerScope: RunnerTokenScope?
        /// A per-runner token's id (`rtk_…`); nil for the shared tokens and open mode.
        var runnerTokenID: String?
    }

    /// The presented token, once it proves the role the route needs. A token that is neither
    /// shared one but starts with `rwr_` is looked up with `runnerToken` — in the store, on every
    /// request and with no cache: a revoked token must be refused from the next request on, on
    /// every node, and the lookup (one unique-index read) is small beside the claim, heartbeat
    /// or report it lets through. With `perRunnerTokens`, a per-runner token is let through
    /// too where the client token is `required` (see `Route.perRunnerTokens`).
    func authorize(
        _ request: Request, as required: TokenRole, perRunnerTokens: Bool = false, now: Timestamp,
        runnerToken: (String) async throws -> RunnerToken?
    ) async throws -> Caller {
        if isOpen { return Caller(role: .open) }
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw RunwardenError.unauthorized
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        // Digests, not the tokens, are compared: equal length whatever was sent, and swift-crypto
        // compares digests in constant time, so timing tells nothing about how much matched.
        let presented = SHA256.hash(data: Array(token.utf8))
        var caller: Caller
        if presented == clientDigest {
            caller = Caller(role: .client, token: token)
        } else if presented == runnerDigest {
            caller = Caller(role: .runner, token: token)
        } else if token.hasPrefix(RunnerToken.prefix), token.utf8.count <= 100, let found = try await runnerToken(token) {
            guard !found.isExpired(at: now) else { throw RunwardenError(.unauthorized, "this runner token expired") }
            caller = Caller(role: .runner, token: token, runnerScope: found.scope, runnerTokenID: found.id)
        } else {
            throw RunwardenError.unauthorized
        }
        guard caller.role == required || (perRunnerTokens && caller.runnerTokenID != nil) else {
            let needed = required == .client ? "the client token" : "a runner token"
            throw RunwardenError(.forbidden, "this route needs \(needed)")
        }
        return caller
    }
}
