import ArgumentParser
import Foundation
import Logging
import RunwardenCore
import RunwardenRunner
import ServiceLifecycle
import UnixSignals

/// `runwarden runner`: the host agent (SPEC §4).
struct RunnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "runner", abstract: "Run tasks on this host for a Runwarden server.")

    @Option(name: .long, help: "Server URL; repeat or comma-separate for failover (env RUNWARDEN_URL, default http://127.0.0.1:8080).")
    var server: [String] = []
    @Option(help: "Runner token (env RUNWARDEN_RUNNER_TOKEN, then RUNWARDEN_TOKEN).") var token: String?
    @Option(help: "Read the runner token from this file (env RUNWARDEN_TOKEN_FILE).") var tokenFile: String?
    @Option(help: "Trust the CA certificates in this PEM file for https:// servers (env RUNWARDEN_CA_FILE).") var caFile: String?
    @Option(help: "This runner's name (env RUNWARDEN_RUNNER_NAME, default the host name).") var name: String?
    @Option(help: "Labels this runner has, comma-separated, e.g. linux,gpu (env RUNWARDEN_LABELS, default none).") var labels: String?
    @Option(help: "Tasks run at once (env RUNWARDEN_CONCURRENCY, default 1).") var concurrency: Int?
    @Option(help: "Directory for workspaces, logs and the report spool (env RUNWARDEN_WORK_DIR, default ./runwarden-work).")
    var workDir: String?
    @Option(help: "Between SIGTERM and SIGKILL when a task is stopped, e.g. 10s (env RUNWARDEN_KILL_GRACE, default 10s).")
    var killGrace: String?
    @Option(help: "On SIGINT/SIGTERM, how long running tasks may finish, e.g. 30s (env RUNWARDEN_SHUTDOWN_GRACE, default 30s).")
    var shutdownGrace: String?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let settings = Settings()
        let configuration = try runnerConfiguration(settings)
        let logger = try logging.bootstrap(settings, label: "runwarden.runner")
        let agent = try RunnerAgent(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// The runner's configuration from the flags, else `settings`' environment, else defaults.
    func runnerConfiguration(_ settings: Settings) throws -> RunnerConfiguration {
        let token = try TokenSource.resolve(
            token: token, tokenFile: tokenFile, environmentNames: ["RUNWARDEN_RUNNER_TOKEN", "RUNWARDEN_TOKEN"], settings: settings)
        let concurrency = try settings.parsed(
            concurrency.map(String.init), env: "RUNWARDEN_CONCURRENCY", option: "--concurrency", must: "a whole number of at least 1",
            { Int($0).flatMap { $0 >= 1 ? $0 : nil } })
        var configuration = RunnerConfiguration(
            servers: settings.servers(server), token: token,
            name: settings.value(name, env: "RUNWARDEN_RUNNER_NAME") ?? ProcessInfo.processInfo.hostName,
            labels: settings.list(labels.map { [$0] } ?? [], env: "RUNWARDEN_LABELS"),
            concurrency: concurrency ?? 1,
            workDir: settings.value(workDir, env: "RUNWARDEN_WORK_DIR") ?? "./runwarden-work")
        // Unset: RunnerConfiguration's defaults, the ones the help text names.
        if let grace = try settings.duration(killGrace, env: "RUNWARDEN_KILL_GRACE", option: "--kill-grace") {
            configuration.killGrace = grace
        }
        if let grace = try settings.duration(shutdownGrace, env: "RUNWARDEN_SHUTDOWN_GRACE", option: "--shutdown-grace") {
            configuration.shutdownGrace = grace
        }
        configuration.caFile = settings.value(caFile, env: "RUNWARDEN_CA_FILE")
        return configuration
    }
}
