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
    @Option(help: "Log level: trace, debug, info, notice, warning, error (env RUNWARDEN_LOG_LEVEL, default info).")
    var logLevel: String?
    @Option(help: "Log format: text or json, one object per line (env RUNWARDEN_LOG_FORMAT, default text).")
    var logFormat: LogFormat?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        func setting(_ flag: String?, _ name: String) -> String? {
            flag ?? environment[name].flatMap { $0.isEmpty ? nil : $0 }
        }

        var config = ServerConfiguration()
        if let host = setting(host, "RUNWARDEN_HOST") { config.host = host }
        if let portText = setting(port.map(String.init), "RUNWARDEN_PORT") {
            guard let value = Int(portText), (0...65535).contains(value) else {
                throw ValidationError("--port must be 0 to 65535, not \(portText)")
            }
            config.port = value
        }
        if let database = setting(database, "RUNWARDEN_DATABASE") { config.database = database }
        if let poolText = setting(dbPoolSize.map(String.init), "RUNWARDEN_DB_POOL_SIZE") {
            guard let size = Int(poolText), (1...1000).contains(size) else {
                throw ValidationError("--db-pool-size must be 1 to 1000, not \(poolText)")
            }
            config.databasePoolSize = size
        }
        config.clientToken = setting(clientToken, "RUNWARDEN_CLIENT_TOKEN")
        config.runnerToken = setting(runnerToken, "RUNWARDEN_RUNNER_TOKEN")
        if let leaseText = setting(lease, "RUNWARDEN_LEASE") {
            guard let milliseconds = Units.milliseconds(leaseText), (1000...86_400_000).contains(milliseconds) else {
                throw ValidationError("--lease must be a duration from 1s to 24h, such as 30s or 2m, not \(leaseText)")
            }
            config.leaseSeconds = Int(milliseconds / 1000)
        }
        if let sizeText = setting(maxBody, "RUNWARDEN_MAX_BODY") {
            guard let bytes = Units.bytes(sizeText) else {
                throw ValidationError("--max-body must be a size such as 1MiB, 512KiB or 65536, not \(sizeText)")
            }
            config.maxBodyBytes = bytes
        }
        if let retryText = setting(webhookRetry, "RUNWARDEN_WEBHOOK_RETRY") {
            guard let schedule = RetrySchedule.parse(retryText) else {
                throw ValidationError("--webhook-retry takes comma-separated durations such as 5s,30s,2m, not \(retryText)")
            }
            config.webhookRetryMs = schedule
        }
        var egress: [String: [IPNetwork]] = [:]
        for (flag, value, name) in [("--webhook-deny", webhookDeny, "RUNWARDEN_WEBHOOK_DENY"), ("--webhook-allow", webhookAllow, "RUNWARDEN_WEBHOOK_ALLOW")] {
            guard let text = setting(value, name) else { continue }
            guard let networks = EgressPolicy.networks(text) else {
                throw ValidationError("\(flag) takes comma-separated networks such as 10.0.0.0/8,fd00::/8, not \(text)")
            }
            egress[flag] = networks
        }
        config.webhookEgress = EgressPolicy(deny: egress["--webhook-deny"] ?? [], allow: egress["--webhook-allow"] ?? [])
        if let timeout = try duration(setting(headerTimeout, "RUNWARDEN_HEADER_TIMEOUT"), flag: "--header-timeout") {
            config.headerTimeout = timeout
        }
        if let timeout = try duration(setting(idleTimeout, "RUNWARDEN_IDLE_TIMEOUT"), flag: "--idle-timeout") {
            config.idleTimeout = timeout
        }
        switch (setting(tlsCert, "RUNWARDEN_TLS_CERT"), setting(tlsKey, "RUNWARDEN_TLS_KEY")) {
        case (nil, nil): break
        case (let cert?, let key?): config.tls = TLSFiles(certificatePath: cert, privateKeyPath: key)
        default: throw ValidationError("give both --tls-cert and --tls-key (or RUNWARDEN_TLS_CERT and RUNWARDEN_TLS_KEY), or neither")
        }
        do {
            try config.validate()
        } catch let problem as ServerConfiguration.Problem {
            throw ValidationError(problem.description)
        }

        let level = setting(logLevel, "RUNWARDEN_LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? .info
        try LogFormat.resolve(logFormat).bootstrap(level: level)
        var logger = Logger(label: "runwarden")
        logger.logLevel = level
        let settings = config
        let app = try await buildApplication(config, logger: logger) { port in
            let scheme = settings.tls == nil ? "http" : "https"
            print("Runwarden listening on \(scheme)://\(settings.host):\(port) — database \(settings.redactedDatabase)")
            if settings.isOpen {
                print("No tokens configured: every request is accepted, and only on this loopback address.")
            }
            fflush(nil)  // stdout may be a file or a pipe: say it now, not when the buffer fills
        }
        try await app.runService()
    }

    /// A duration flag's value; nil when not given.
    private func duration(_ text: String?, flag: String) throws -> Duration? {
        guard let text else { return nil }
        guard let milliseconds = Units.milliseconds(text) else {
            throw ValidationError("\(flag) must be a duration such as 500ms, 10s or 2m, not \(text)")
        }
        return .milliseconds(milliseconds)
    }
}
