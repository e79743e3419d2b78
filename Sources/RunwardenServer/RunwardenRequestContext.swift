import Hummingbird
import NIOCore
import RunwardenCore

/// Which of the two tokens a request presented (SPEC §2 "Authentication").
public enum TokenRole: Sendable, Equatable {
    case client, runner
    /// No tokens are configured: the server listens on loopback only and trusts every caller.
    case open
}

/// The request context of every route: Hummingbird's core storage plus the caller's role and
/// the client token (idempotency keys are scoped to it).
public struct RunwardenRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var role: TokenRole?
    public var token: String?
    /// A per-runner token's limits (SPEC §8); nil for the shared runner token.
    public var runnerScope: RunnerTokenScope?
    /// A per-runner token's id; nil for the shared tokens and open mode.
    public var runnerTokenID: String?
    /// The connection, to notice a client that leaves while its long-poll waits.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Hummingbird's own limit stays out of the way; routes enforce `--max-body` themselves so
    /// the error is our typed `413 payload_too_large`.
    public var maxUploadSize: Int { .max }
}
