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

    /// The presented token, once it proves the role the route needs.
    func authorize(_ request: Request, as required: TokenRole) throws -> (role: TokenRole, token: String?) {
        if isOpen { return (.open, nil) }
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw RunwardenError.unauthorized
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        // Digests, not the tokens, are compared: equal length whatever was sent, and swift-crypto
        // compares digests in constant time, so timing tells nothing about how much matched.
        let presented = SHA256.hash(data: Array(token.utf8))
        let role: TokenRole
        if presented == clientDigest {
            role = .client
        } else if presented == runnerDigest {
            role = .runner
        } else {
            throw RunwardenError.unauthorized
        }
        guard role == required else {
            let needed = required == .client ? "the client token" : "the runner token"
            throw RunwardenError(.forbidden, "this route needs \(needed)")
        }
        return (role, token)
    }
}
