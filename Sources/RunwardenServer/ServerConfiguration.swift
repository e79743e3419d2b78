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
    /// How long finished runs keep their events (`--retention`, SPEC §7); nil keeps them forever.
    public var retention: Duration?
    /// The most bytes kept of one attempt's output (`--log-max-bytes`, SPEC §9): the first half
    /// and the newest bytes.
    public var logMaxBytes = LogCap.defaultMaxBytes
    /// How long task logs are kept after their last byte arrived (`--log-retention`, SPEC §9);
    /// nil keeps them forever.
    public var logRetention: Duration? = .seconds(30 * 86_400)
    /// The most tasks a run may hold (`--max-tasks`, SPEC §7).
    public var maxTasks = RunDefinition.defaultMaxTasks
    /// Connections to PostgreSQL this node may open (`--db-pool-size`).
    public var databasePoolSize = 20
    /// How often the reaper looks for lost leases and timeouts; nil turns it off (tests that
    /// drive `RunService.reap()` themselves).
    public var reaperInterval: Duration? = .seconds(1)
    /// Delays between webhook attempts after the first, in milliseconds (`--webhook-retry`).
    public var webhookRetryMs: [Int64] = RetrySchedule.parse(RetrySchedule.standard) ?? []
    /// Whether this server delivers webhooks; off in tests that must not reach any network.
    public var dispatchWebhooks = true
    /// How long one webhook attempt may take, connect to last body byte (SPEC §3: 15 s).
    public var webhookAttemptTimeout = WebhookDispatcher.Settings.standardAttemptTimeout
    /// Which addresses webhooks may reach (`--webhook-deny`, `--webhook-allow`).
    public var webhookEgress = EgressPolicy.standard
    /// How often an idle event stream sends a keep-alive comment.
    public var streamKeepAlive: Duration = .seconds(15)
    /// How long a connection may take to send a complete request head (`--header-timeout`).
    public var headerTimeout: Duration = .seconds(10)
    /// How long a kept-alive connection may sit idle between requests (`--idle-timeout`).
    public var idleTimeout: Duration = .seconds(75)
    /// Serve HTTPS with these PEM files (`--tls-cert`, `--tls-key`); nil serves plain HTTP.
    public var tls: TLSFiles?
    /// Send traces to this OTLP/HTTP collector (`--otel-endpoint`, SPEC §11); nil traces nothing.
    public var tracing: TracingConfiguration?

    public init() {}

    public enum Problem: Error, CustomStringConvertible, Equatable {
        case tokensRequired(host: String)
        case tokenPairIncomplete
        case unsupportedDatabase(String)
        case unreadableTLSFile(path: String, reason: String)
        case invalidOTelEndpoint(String)

        public var description: String {
            switch self {
            case .tokensRequired(let host):
                "refusing to listen on \(host) without tokens: set --client-token and --runner-token "
                    + "(or RUNWARDEN_CLIENT_TOKEN and RUNWARDEN_RUNNER_TOKEN), or listen on 127.0.0.1"
            case .tokenPairIncomplete:
                "set both --client-token and --runner-token, or neither (open mode on loopback only)"
            case .unsupportedDatabase(let url):
                "unsupported --database \"\(url)\": give a file path, sqlite:PATH or postgres://user@host:port/db"
            case .unreadableTLSFile(let path, let reason):
                "cannot use \(path) for TLS: \(reason)"
            case .invalidOTelEndpoint(let endpoint):
                "invalid --otel-endpoint \"\(endpoint)\": give the collector's OTLP/HTTP base URL, such as http://127.0.0.1:4318"
            }
        }
    }

    public enum Database: Equatable, Sendable {
        case sqlite(path: String)
        case postgres(url: String)
    }

    /// What `database` names: a path or `sqlite:PATH`, or a `postgres://` URL.
    public func databaseKind() throws -> Database {
        if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") { return .postgres(url: database) }
        if database.hasPrefix("sqlite:") { return .sqlite(path: String(database.dropFirst("sqlite:".count))) }
        if database.isEmpty || database.contains("://") { throw Problem.unsupportedDatabase(database) }
        return .sqlite(path: database)
    }

    /// Refuses an unsafe set-up: tokens must come as a pair, and an open server (no tokens)
    /// may only listen on a loopback address.
    public func validate() throws {
        if (clientToken == nil) != (runnerToken == nil) { throw Problem.tokenPairIncomplete }
        if clientToken == nil, !LoopbackName.matches(host) { throw Problem.tokensRequired(host: host) }
        _ = try databaseKind()
        if let tracing, !tracing.isValid { throw Problem.invalidOTelEndpoint(tracing.endpoint) }
    }

    public var isOpen: Bool { clientToken == nil && runnerToken == nil }

    /// `database` fit to print: a password in a URL is replaced by `***`.
    public var redactedDatabase: String {
        guard let scheme = database.range(of: "://"), let at = database.range(of: "@", range: scheme.upperBound..<database.endIndex),
            let colon = database.range(of: ":", range: scheme.upperBound..<at.lowerBound)
        else { return database }
        return String(database[..<colon.upperBound]) + "***" + String(database[at.lowerBound...])
    }
}
