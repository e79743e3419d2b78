import RunwardenCore

/// Everything `runwarden serve` can be told, filled from flags, then environment, then defaults.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// A path, `sqlite:PATH`, or (later) `postgres://...`.
    public var database = "./runwarden.sqlite"
    public var clientToken: String?
    public var runnerToken: String?
    public var leaseSeconds = 30
    public var maxBodyBytes = 1 << 20
    /// How often the reaper looks for lost leases and timeouts; nil turns it off (tests that
    /// drive `RunService.reap()` themselves).
    public var reaperInterval: Duration? = .seconds(1)
    /// Delays between webhook attempts after the first, in milliseconds (`--webhook-retry`).
    public var webhookRetryMs: [Int64] = RetrySchedule.parse(RetrySchedule.standard) ?? []
    /// Whether this server delivers webhooks; off in tests that must not reach any network.
    public var dispatchWebhooks = true
    /// How often an idle event stream sends a keep-alive comment.
    public var streamKeepAlive: Duration = .seconds(15)

    public init() {}

    public enum Problem: Error, CustomStringConvertible, Equatable {
        case tokensRequired(host: String)
        case tokenPairIncomplete
        case unsupportedDatabase(String)

        public var description: String {
            switch self {
            case .tokensRequired(let host):
                "refusing to listen on \(host) without tokens: set --client-token and --runner-token "
                    + "(or RUNWARDEN_CLIENT_TOKEN and RUNWARDEN_RUNNER_TOKEN), or listen on 127.0.0.1"
            case .tokenPairIncomplete:
                "set both --client-token and --runner-token, or neither (open mode on loopback only)"
            case .unsupportedDatabase(let url):
                "unsupported --database \"\(url)\": give a file path or sqlite:PATH (PostgreSQL support is planned)"
            }
        }
    }

    /// The SQLite file path named by `database`.
    public func sqlitePath() throws -> String {
        if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
            throw Problem.unsupportedDatabase(database)
        }
        if database.hasPrefix("sqlite:") { return String(database.dropFirst("sqlite:".count)) }
        return database
    }

    /// Refuses an unsafe set-up: tokens must come as a pair, and an open server (no tokens)
    /// may only listen on a loopback address.
    public func validate() throws {
        if (clientToken == nil) != (runnerToken == nil) { throw Problem.tokenPairIncomplete }
        if clientToken == nil, !Self.isLoopback(host) { throw Problem.tokensRequired(host: host) }
        _ = try sqlitePath()
    }

    public var isOpen: Bool { clientToken == nil && runnerToken == nil }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
