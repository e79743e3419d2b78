import ArgumentParser
import Foundation
import Hummingbird
import Logging
import RunwardenCore
import RunwardenServer

/// `runwarden serve`: flags first, then `RUNWARDEN_*` environment variables, then defaults.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the Runwarden server.")

    @Option(help: "Address to listen on (env RUNWARDEN_HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on; 0 picks a free one (env RUNWARDEN_PORT, default 8080).") var port: Int?
    @Option(help: "SQLite file path, sqlite:PATH, or postgres://user@host:port/db (env RUNWARDEN_DATABASE, default ./runwarden.sqlite).")
    var database: String?
    @Option(help: "Connections to PostgreSQL this node may open (env RUNWARDEN_DB_POOL_SIZE, default 20).") var dbPoolSize: Int?
    @Option(help: "Token for clients (env RUNWARDEN_CLIENT_TOKEN).") var clientToken: String?
    @Option(help: "Token for runners (env RUNWARDEN_RUNNER_TOKEN).") var runnerToken: String?
    @Option(help: "Runner lease, e.g. 30s or 2m (env RUNWARDEN_LEASE, default 30s).") var lease: String?
    @Option(help: "Largest request body, e.g. 1MiB or 65536 (env RUNWARDEN_MAX_BODY, default 1MiB).") var maxBody: String?
    @Option(help: "Remove the events, deliveries and idempotency keys of runs finished longer ago than this, e.g. 30d or 12h; their snapshots stay (env RUNWARDEN_RETENTION, default: keep everything).")
    var retention: String?
    @Option(help: "The most tasks one run may hold (env RUNWARDEN_MAX_TASKS, default 10000).") var maxTasks: Int?
    @Option(help: "The most bytes kept of one task attempt's output: its first half and newest bytes, the middle dropped and counted, e.g. 16MiB (env RUNWARDEN_LOG_MAX_BYTES, default 16MiB).")
    var logMaxBytes: String?
    @Option(help: "Remove task logs this long after their last output, e.g. 30d; `off` keeps them (env RUNWARDEN_LOG_RETENTION, default 30d).")
    var logRetention: String?
    @Option(help: "Webhook retry delays after the first try, e.g. 5s,5m,30m (env RUNWARDEN_WEBHOOK_RETRY, default 5s,5m,30m,2h,5h,10h,10h).")
    var webhookRetry: String?
    @Option(help: "Networks webhooks must not reach, added to the default link-local, unspecified and multicast ones, e.g. 10.0.0.0/8,fd00::/8 (env RUNWARDEN_WEBHOOK_DENY).")
    var webhookDeny: String?
    @Option(help: "Networks webhooks may reach even when denied, e.g. 169.254.10.0/24 (env RUNWARDEN_WEBHOOK_ALLOW).")
    var webhookAllow: String?
    @Option(help: "Close a connection that has not sent a whole request head in this long, e.g. 10s (env RUNWARDEN_HEADER_TIMEOUT, default 10s).")
    var headerTimeout: String?
    @Option(help: "Close a kept-alive connection idle for this long, e.g. 75s (env RUNWARDEN_IDLE_TIMEOUT, default 75s).")
    var idleTimeout: String?
    @Option(help: "Serve HTTPS with this PEM certificate chain; needs --tls-key (env RUNWARDEN_TLS_CERT).") var tlsCert: String?
    @Option(help: "The PEM private key of --tls-cert (env RUNWARDEN_TLS_KEY).") var tlsKey: String?
    @Option(help: "Send traces to this OpenTelemetry collector's OTLP/HTTP base URL, e.g. http://127.0.0.1:4318: a span per request, a trace per run (env OTEL_EXPORTER_OTLP_ENDPOINT, default: no tracing).")
    var otelEndpoint: String?
    @Option(help: "The service.name of those traces (env OTEL_SERVICE_NAME, default runwarden).") var otelServiceName: String?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let settings = Settings()
        let config = try serverConfiguration(settings)
        let logger = try logging.bootstrap(settings, label: "runwarden")
        let requestTracing = try config.tracing?.bootstrapRequestTracing(logger: logger)
        let app = try await buildApplication(config, logger: logger, requestTracing: requestTracing) { port in
            let scheme = config.tls == nil ? "http" : "https"
            print("Runwarden listening on \(scheme)://\(config.host):\(port) — database \(config.redactedDatabase)")
            if config.isOpen {
                print("No tokens configured: every request is accepted, and only on this loopback address.")
            }
            fflush(nil)  // stdout may be a file or a pipe: say it now, not when the buffer fills
        }
        try await app.runService()
    }

    /// The server's configuration from the flags, else `settings`' environment, else defaults.
    func serverConfiguration(_ settings: Settings) throws -> ServerConfiguration {
        var config = ServerConfiguration()
        if let host = settings.value(host, env: "RUNWARDEN_HOST") { config.host = host }
        if let port = try settings.parsed(port.map(String.init), env: "RUNWARDEN_PORT", option: "--port", must: "0 to 65535", {
            Int($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }) {
            config.port = port
        }
        if let database = settings.value(database, env: "RUNWARDEN_DATABASE") { config.database = database }
        if let size = try settings.parsed(
            dbPoolSize.map(String.init), env: "RUNWARDEN_DB_POOL_SIZE", option: "--db-pool-size", must: "1 to 1000",
            { Int($0).flatMap { (1...1000).contains($0) ? $0 : nil } })
        {
            config.databasePoolSize = size
        }
        config.clientToken = settings.value(clientToken, env: "RUNWARDEN_CLIENT_TOKEN")
        config.runnerToken = settings.value(runnerToken, env: "RUNWARDEN_RUNNER_TOKEN")
        if let milliseconds = try settings.parsed(
            lease, env: "RUNWARDEN_LEASE", option: "--lease", must: "a duration from 1s to 24h, such as 30s or 2m",
            { Units.milliseconds($0).flatMap { (1000...86_400_000).contains($0) ? $0 : nil } })
        {
            config.leaseSeconds = Int(milliseconds / 1000)
        }
        if let bytes = try settings.parsed(
            maxBody, env: "RUNWARDEN_MAX_BODY", option: "--max-body", must: "a size such as 1MiB, 512KiB or 65536", Units.bytes)
        {
            config.maxBodyBytes = bytes
        }
        if let limit = try settings.parsed(
            maxTasks.map(String.init), env: "RUNWARDEN_MAX_TASKS", option: "--max-tasks", must: "1 to 100000",
            { Int($0).flatMap { (1...100_000).contains($0) ? $0 : nil } })
        {
            config.maxTasks = limit
        }
        if let milliseconds = try settings.parsed(
            retention, env: "RUNWARDEN_RETENTION", option: "--retention", must: "a duration from 1s, such as 30d or 12h",
            { Units.milliseconds($0).flatMap { $0 >= 1000 ? $0 : nil } })
        {
            config.retention = .milliseconds(milliseconds)
        }
        if let bytes = try settings.parsed(
            logMaxBytes, env: "RUNWARDEN_LOG_MAX_BYTES", option: "--log-max-bytes", must: "a size from 1KiB, such as 16MiB",
            { Units.bytes($0).flatMap { $0 >= 1024 ? $0 : nil } })
        {
            config.logMaxBytes = Int64(bytes)
        }
        if let kept = try settings.parsed(
            logRetention, env: "RUNWARDEN_LOG_RETENTION", option: "--log-retention", must: "off or a duration from 1s, such as 30d",
            { value -> Duration?? in
                if value == "off" { return .some(nil) }
                return Units.milliseconds(value).flatMap { $0 >= 1000 ? .some(.milliseconds($0)) : nil }
            })
        {
            config.logRetention = kept
        }
        if let schedule = try settings.parsed(
            webhookRetry, env: "RUNWARDEN_WEBHOOK_RETRY", option: "--webhook-retry",
            must: "comma-separated durations such as 5s,30s,2m", RetrySchedule.parse)
        {
            config.webhookRetryMs = schedule
        }
        let networks = "comma-separated networks such as 10.0.0.0/8,fd00::/8"
        config.webhookEgress = EgressPolicy(
            deny: try settings.parsed(webhookDeny, env: "RUNWARDEN_WEBHOOK_DENY", option: "--webhook-deny", must: networks, EgressPolicy.networks) ?? [],
            allow: try settings.parsed(webhookAllow, env: "RUNWARDEN_WEBHOOK_ALLOW", option: "--webhook-allow", must: networks, EgressPolicy.networks) ?? [])
        if let timeout = try settings.duration(headerTimeout, env: "RUNWARDEN_HEADER_TIMEOUT", option: "--header-timeout") {
            config.headerTimeout = timeout
        }
        if let timeout = try settings.duration(idleTimeout, env: "RUNWARDEN_IDLE_TIMEOUT", option: "--idle-timeout") {
            config.idleTimeout = timeout
        }
        switch (settings.value(tlsCert, env: "RUNWARDEN_TLS_CERT"), settings.value(tlsKey, env: "RUNWARDEN_TLS_KEY")) {
        case (nil, nil): break
        case (let cert?, let key?): config.tls = TLSFiles(certificatePath: cert, privateKeyPath: key)
        default: throw ValidationError("give both --tls-cert and --tls-key (or RUNWARDEN_TLS_CERT and RUNWARDEN_TLS_KEY), or neither")
        }
        if let endpoint = settings.value(otelEndpoint, env: "OTEL_EXPORTER_OTLP_ENDPOINT") {
            config.tracing = TracingConfiguration(
                endpoint: endpoint,
                serviceName: settings.value(otelServiceName, env: "OTEL_SERVICE_NAME") ?? TracingConfiguration.defaultServiceName)
        }
        do {
            try config.validate()
        } catch let problem as ServerConfiguration.Problem {
            throw ValidationError(problem.description)
        }
        return config
    }
}
