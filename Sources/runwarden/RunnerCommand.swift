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
    @Option(help: "This runner's name (default: the host name).") var name: String?
    @Option(help: "Labels this runner has, comma-separated, e.g. linux,gpu.") var labels: String = ""
    @Option(help: "Tasks run at once.") var concurrency: Int = 1
    @Option(help: "Directory for workspaces, logs and the report spool.") var workDir: String = "./runwarden-work"
    @Option(help: "Between SIGTERM and SIGKILL when a task is stopped, e.g. 10s.") var killGrace: String = "10s"
    @Option(help: "On SIGINT/SIGTERM, how long running tasks may finish, e.g. 30s.") var shutdownGrace: String = "30s"
    @Option(help: "Log level: debug, info, warning, error.") var logLevel: String = "info"
    @Option(help: "Log format: text or json, one object per line (env RUNWARDEN_LOG_FORMAT, default text).")
    var logFormat: LogFormat?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var servers = server.flatMap { $0.split(separator: ",").map(String.init) }
        if servers.isEmpty { servers = environment["RUNWARDEN_URL"]?.split(separator: ",").map(String.init) ?? [] }
        if servers.isEmpty { servers = ["http://127.0.0.1:8080"] }
        let token = try TokenSource.resolve(
            token: token, tokenFile: tokenFile, environmentNames: ["RUNWARDEN_RUNNER_TOKEN", "RUNWARDEN_TOKEN"])
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard let killGraceMs = Units.milliseconds(killGrace), let shutdownGraceMs = Units.milliseconds(shutdownGrace) else {
            throw ValidationError("--kill-grace and --shutdown-grace take durations such as 500ms, 10s or 2m")
        }

        var configuration = RunnerConfiguration(
            servers: servers, token: token, name: name ?? ProcessInfo.processInfo.hostName,
            labels: labels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty },
            concurrency: concurrency, workDir: workDir)
        configuration.killGrace = .milliseconds(killGraceMs)
        configuration.shutdownGrace = .milliseconds(shutdownGraceMs)
        configuration.caFile = CAFileOption.resolve(caFile)

        let level = Logger.Level(rawValue: logLevel) ?? .info
        try LogFormat.resolve(logFormat).bootstrap(level: level)
        var logger = Logger(label: "runwarden.runner")
        logger.logLevel = level
        let agent = try RunnerAgent(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
