import ArgumentParser
import Foundation
import Logging
import RunwardenServer
import Testing

@testable import runwarden

/// Every command reads a setting the same way: flag, else `RUNWARDEN_*` variable (empty is
/// unset), else default; a bad value is one error naming where it came from.
@Suite("Settings: flag, then environment, then default")
struct SettingsTests {
    @Test("a flag beats its variable, a variable beats the default, an empty variable is unset")
    func order() throws {
        let settings = Settings(environment: ["RUNWARDEN_HOST": "0.0.0.0", "RUNWARDEN_DATABASE": ""])
        #expect(settings.value("10.0.0.1", env: "RUNWARDEN_HOST") == "10.0.0.1")
        #expect(settings.value(nil, env: "RUNWARDEN_HOST") == "0.0.0.0")
        #expect(settings.value(nil, env: "RUNWARDEN_DATABASE") == nil)
        #expect(settings.list([], env: "RUNWARDEN_LABELS").isEmpty)
        let labelled = Settings(environment: ["RUNWARDEN_LABELS": "linux"])
        #expect(labelled.list([], env: "RUNWARDEN_LABELS") == ["linux"])
        #expect(labelled.list([""], env: "RUNWARDEN_LABELS").isEmpty, "a given flag wins, even an empty one")
        #expect(Settings(environment: ["RUNWARDEN_URL": "http://a:1, http://b:2,"]).servers([]) == ["http://a:1", "http://b:2"])
        #expect(Settings(environment: ["RUNWARDEN_URL": "http://a:1"]).servers(["http://c:3,http://d:4"]) == ["http://c:3", "http://d:4"])
        #expect(Settings(environment: [:]).servers([]) == ["http://127.0.0.1:8080"])
    }

    @Test("a refused value names the flag or the variable it came from, and what it must be")
    func errors() throws {
        let settings = Settings(environment: ["RUNWARDEN_CONCURRENCY": "0"])
        expectRefused("RUNWARDEN_CONCURRENCY must be a whole number of at least 1, not 0") {
            try RunnerCommand.parse([]).runnerConfiguration(settings)
        }
        expectRefused("--concurrency must be a whole number of at least 1, not 0") {
            try RunnerCommand.parse(["--concurrency", "0"]).runnerConfiguration(Settings(environment: [:]))
        }
        expectRefused("RUNWARDEN_PORT must be 0 to 65535, not 70000") {
            try Serve.parse([]).serverConfiguration(Settings(environment: ["RUNWARDEN_PORT": "70000"]))
        }
        expectRefused("RUNWARDEN_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical, not loud") {
            try Settings(environment: ["RUNWARDEN_LOG_LEVEL": "loud"]).logLevel(nil)
        }
        expectRefused("RUNWARDEN_KILL_GRACE must be a duration such as 500ms, 10s or 2m, not soon") {
            try RunnerCommand.parse([]).runnerConfiguration(Settings(environment: ["RUNWARDEN_KILL_GRACE": "soon"]))
        }
    }

    @Test("every runner option falls back to its RUNWARDEN_* variable, then to its default")
    func runnerEnvironment() throws {
        let environment = [
            "RUNWARDEN_URL": "http://ci:9000", "RUNWARDEN_RUNNER_NAME": "builder-7", "RUNWARDEN_LABELS": "linux, gpu",
            "RUNWARDEN_CONCURRENCY": "3", "RUNWARDEN_WORK_DIR": "/srv/rw", "RUNWARDEN_KILL_GRACE": "2s",
            "RUNWARDEN_SHUTDOWN_GRACE": "1m", "RUNWARDEN_CA_FILE": "/etc/ca.pem", "RUNWARDEN_TOKEN": "t0k",
        ]
        let fromEnvironment = try RunnerCommand.parse([]).runnerConfiguration(Settings(environment: environment))
        #expect(fromEnvironment.servers == ["http://ci:9000"])
        #expect(fromEnvironment.name == "builder-7")
        #expect(fromEnvironment.labels == ["linux", "gpu"])
        #expect(fromEnvironment.concurrency == 3)
        #expect(fromEnvironment.workDir == "/srv/rw")
        #expect(fromEnvironment.killGrace == .seconds(2))
        #expect(fromEnvironment.shutdownGrace == .seconds(60))
        #expect(fromEnvironment.caFile == "/etc/ca.pem")
        #expect(fromEnvironment.token == "t0k")

        let flags = try RunnerCommand.parse([
            "--name", "flagged", "--labels", "arm", "--concurrency", "5", "--work-dir", "w", "--kill-grace", "1s",
            "--shutdown-grace", "3s",
        ]).runnerConfiguration(Settings(environment: environment))
        #expect(flags.name == "flagged")
        #expect(flags.labels == ["arm"])
        #expect(flags.concurrency == 5)
        #expect(flags.workDir == "w")
        #expect(flags.killGrace == .seconds(1))
        #expect(flags.shutdownGrace == .seconds(3))

        let defaults = try RunnerCommand.parse([]).runnerConfiguration(Settings(environment: [:]))
        #expect(defaults.servers == ["http://127.0.0.1:8080"])
        #expect(defaults.name == ProcessInfo.processInfo.hostName)
        #expect(defaults.labels.isEmpty)
        #expect(defaults.concurrency == 1)
        #expect(defaults.workDir == "./runwarden-work")
        #expect(defaults.killGrace == .seconds(10))
        #expect(defaults.shutdownGrace == .seconds(30))
        #expect(defaults.caFile == nil)
        #expect(defaults.token == nil)
    }

    @Test("serve reads the same way: flag over variable, empty variable unset")
    func serveEnvironment() throws {
        let settings = Settings(environment: ["RUNWARDEN_PORT": "9100", "RUNWARDEN_LEASE": "2m", "RUNWARDEN_HOST": ""])
        let fromEnvironment = try Serve.parse([]).serverConfiguration(settings)
        #expect(fromEnvironment.port == 9100)
        #expect(fromEnvironment.leaseSeconds == 120)
        #expect(fromEnvironment.host == "127.0.0.1")
        #expect(try Serve.parse(["--port", "9200"]).serverConfiguration(settings).port == 9200)
        #expect(fromEnvironment.maxTasks == 10_000)
        #expect(try Serve.parse([]).serverConfiguration(Settings(environment: ["RUNWARDEN_MAX_TASKS": "20000"])).maxTasks == 20_000)
        #expect(try Serve.parse(["--max-tasks", "3"]).serverConfiguration(settings).maxTasks == 3)
        #expect(throws: ValidationError.self) { try Serve.parse(["--max-tasks", "0"]).serverConfiguration(settings) }
        #expect(fromEnvironment.retention == nil, "retention is off unless asked for")
        #expect(try Serve.parse(["--retention", "30d"]).serverConfiguration(settings).retention == .seconds(30 * 86_400))
        #expect(try Serve.parse([]).serverConfiguration(Settings(environment: ["RUNWARDEN_RETENTION": "12h"])).retention == .seconds(43_200))
        #expect(throws: ValidationError.self) { try Serve.parse(["--retention", "500ms"]).serverConfiguration(settings) }
    }

    @Test("tracing is off unless --otel-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT names a collector; a bad URL is refused")
    func serveTracing() throws {
        #expect(try Serve.parse([]).serverConfiguration(Settings(environment: [:])).tracing == nil)
        #expect(try Serve.parse([]).serverConfiguration(Settings(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": ""])).tracing == nil)
        let fromEnvironment = try Serve.parse([]).serverConfiguration(
            Settings(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/", "OTEL_SERVICE_NAME": "rw-eu"]))
        #expect(fromEnvironment.tracing == TracingConfiguration(endpoint: "http://collector:4318/", serviceName: "rw-eu"))
        #expect(fromEnvironment.tracing?.tracesURL == "http://collector:4318/v1/traces")
        let fromFlags = try Serve.parse(["--otel-endpoint", "https://otel.example:4318", "--otel-service-name", "rw"])
            .serverConfiguration(Settings(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
        #expect(fromFlags.tracing == TracingConfiguration(endpoint: "https://otel.example:4318", serviceName: "rw"))
        #expect(try Serve.parse(["--otel-endpoint", "http://c:4318"]).serverConfiguration(Settings(environment: [:])).tracing?.serviceName == "runwarden")
        expectRefused(#"invalid --otel-endpoint "collector:4318": give the collector's OTLP/HTTP base URL, such as http://127.0.0.1:4318"#) {
            try Serve.parse(["--otel-endpoint", "collector:4318"]).serverConfiguration(Settings(environment: [:]))
        }
    }

    @Test("the log level and format read flag, variable, default")
    func logging() throws {
        #expect(try Settings(environment: [:]).logLevel(nil) == .info)
        #expect(try Settings(environment: ["RUNWARDEN_LOG_LEVEL": "debug"]).logLevel(nil) == .debug)
        #expect(try Settings(environment: ["RUNWARDEN_LOG_LEVEL": "debug"]).logLevel("error") == .error)
        #expect(try Settings(environment: ["RUNWARDEN_LOG_FORMAT": "json"]).logFormat(nil) == .json)
        #expect(try Settings(environment: ["RUNWARDEN_LOG_FORMAT": ""]).logFormat(nil) == .text)
        expectRefused("RUNWARDEN_LOG_FORMAT must be text or json, not xml") {
            try Settings(environment: ["RUNWARDEN_LOG_FORMAT": "xml"]).logFormat(nil)
        }
    }

    @Test("tokens: a flag wins; else the variables in order; a variable and the file variable together are refused")
    func tokens() throws {
        let names = ["RUNWARDEN_RUNNER_TOKEN", "RUNWARDEN_TOKEN"]
        let both = Settings(environment: ["RUNWARDEN_RUNNER_TOKEN": "runner", "RUNWARDEN_TOKEN": "client"])
        #expect(try TokenSource.resolve(token: "flag", tokenFile: nil, environmentNames: names, settings: both) == "flag")
        #expect(try TokenSource.resolve(token: nil, tokenFile: nil, environmentNames: names, settings: both) == "runner")
        let empty = Settings(environment: ["RUNWARDEN_RUNNER_TOKEN": "", "RUNWARDEN_TOKEN": "client"])
        #expect(try TokenSource.resolve(token: nil, tokenFile: nil, environmentNames: names, settings: empty) == "client")
        let clash = Settings(environment: ["RUNWARDEN_TOKEN": "client", "RUNWARDEN_TOKEN_FILE": "/nonexistent"])
        #expect(throws: ValidationError.self) {
            try TokenSource.resolve(token: nil, tokenFile: nil, environmentNames: ["RUNWARDEN_TOKEN"], settings: clash)
        }
    }

    @Test("every runner and serve option's help names its RUNWARDEN_* variable and its default")
    func helpNamesVariables() {
        let runnerHelp = RunnerCommand.helpMessage(columns: 400)
        for name in [
            "RUNWARDEN_URL", "RUNWARDEN_RUNNER_TOKEN", "RUNWARDEN_TOKEN_FILE", "RUNWARDEN_CA_FILE", "RUNWARDEN_RUNNER_NAME",
            "RUNWARDEN_LABELS", "RUNWARDEN_CONCURRENCY, default 1", "RUNWARDEN_WORK_DIR, default ./runwarden-work",
            "RUNWARDEN_KILL_GRACE, default 10s", "RUNWARDEN_SHUTDOWN_GRACE, default 30s", "RUNWARDEN_LOG_LEVEL, default info",
            "RUNWARDEN_LOG_FORMAT, default text",
        ] {
            #expect(runnerHelp.contains(name), "runner --help does not say \(name)")
        }
        let serveHelp = Serve.helpMessage(columns: 400)
        for name in ["RUNWARDEN_HOST", "RUNWARDEN_PORT", "RUNWARDEN_DATABASE", "RUNWARDEN_LOG_LEVEL, default info", "RUNWARDEN_MAX_TASKS, default 10000", "RUNWARDEN_RETENTION",
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME, default runwarden",
        ] {
            #expect(serveHelp.contains(name), "serve --help does not say \(name)")
        }
    }
}

/// `body` throws the `ValidationError` with exactly `message`.
private func expectRefused(
    _ message: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> some Any
) {
    let error = #expect(throws: ValidationError.self, sourceLocation: sourceLocation) { try body() }
    #expect(error?.message == message, sourceLocation: sourceLocation)
}
