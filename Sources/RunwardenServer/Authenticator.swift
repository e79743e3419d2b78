import Foundation
import Hummingbird

/// Checks bearer tokens (SPEC §2): the client token may create, read, cancel and release
/// locks; the runner token may only claim, heartbeat and report. With no tokens configured
/// every caller is trusted (the server then listens on loopback only).
struct Authenticator: Sendable {
    let clientToken: String?
    let runnerToken: String?

    var isOpen: Bool { clientToken == nil && runnerToken == nil }

    /// The presented token, once it proves the role the route needs.
    func authorize(_ request: Request, as required: TokenRole) throws -> (role: TokenRole, token: String?) {
        if isOpen { return (.open, nil) }
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw APIError.unauthorized
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        let role: TokenRole
        if let clientToken, Self.constantTimeEqual(token, clientToken) {
            role = .client
        } else if let runnerToken, Self.constantTimeEqual(token, runnerToken) {
            role = .runner
        } else {
            throw APIError.unauthorized
        }
        guard role == required else {
            let needed = required == .client ? "the client token" : "the runner token"
            throw APIError(.forbidden, "forbidden", "this route needs \(needed)")
        }
        return (role, token)
    }

    /// Compares without an early exit, so the time taken does not reveal how much matched.
    static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        var difference = UInt8(truncatingIfNeeded: left.count ^ right.count)
        for index in 0..<max(left.count, right.count) {
            difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
        }
        return difference == 0
    }
}
