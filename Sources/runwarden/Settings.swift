import ArgumentParser
import Foundation
import Logging
import RunwardenCore

/// The one way every command reads a setting: its flag, else its `RUNWARDEN_*` variable, else
/// its default. An empty variable counts as unset (`RUNWARDEN_X=` in a unit file or compose
/// file means "not given"). The environment is a parameter so tests can give their own.
struct Settings: Sendable {
    let environment: [String: String]

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The variable's value, nil when unset or empty.
    func variable(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The flag's value, else the variable's.
    func value(_ flag: String?, env: String) -> String? {
        flag ?? variable(env)
    }

    /// `value(flag, env:)` parsed; nil when neither is given. A value `parse` refuses is an
    /// error naming where it came from: "--port must be 0 to 65535, not x" (or RUNWARDEN_PORT).
    func parsed<Value>(
        _ flag: String?, env: String, option: String, must expected: String, _ parse: (String) -> Value?
    ) throws -> Value? {
        guard let text = value(flag, env: env) else { return nil }
        guard let parsed = parse(text) else {
            throw ValidationError("\(flag == nil ? env : option) must be \(expected), not \(text)")
        }
        return parsed
    }

    /// A list given as repeated or comma-separated flags, else as the variable's comma-separated
    /// value; blank items are dropped, so `--labels ""` gives none even when the variable is set.
    func list(_ flags: [String], env: String) -> [String] {
        func items(_ text: some StringProtocol) -> [String] {
            text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return flags.isEmpty ? variable(env).map(items) ?? [] : flags.flatMap(items)
    }

    // MARK: - Parsers shared by several commands

    /// `--log-level` (`RUNWARDEN_LOG_LEVEL`), default info.
    func logLevel(_ flag: String?) throws -> Logger.Level {
        let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
        return try parsed(flag, env: "RUNWARDEN_LOG_LEVEL", option: "--log-level", must: "one of \(names)") {
            Logger.Level(rawValue: $0)
        } ?? .info
    }

    /// `--log-format` (`RUNWARDEN_LOG_FORMAT`), default text.
    func logFormat(_ flag: LogFormat?) throws -> LogFormat {
        try parsed(flag?.rawValue, env: "RUNWARDEN_LOG_FORMAT", option: "--log-format", must: "text or json") {
            LogFormat(rawValue: $0)
        } ?? .text
    }

    /// A duration such as 500ms, 10s or 2m; nil when neither flag nor variable is given.
    func duration(_ flag: String?, env: String, option: String) throws -> Duration? {
        try parsed(flag, env: env, option: option, must: "a duration such as 500ms, 10s or 2m") {
            Units.milliseconds($0).map { .milliseconds($0) }
        }
    }

    /// `--server` (`RUNWARDEN_URL`), default http://127.0.0.1:8080: the client commands' and the runner's.
    func servers(_ flags: [String]) -> [String] {
        let servers = list(flags, env: "RUNWARDEN_URL")
        return servers.isEmpty ? ["http://127.0.0.1:8080"] : servers
    }
}
