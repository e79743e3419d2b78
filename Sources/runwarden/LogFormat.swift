import ArgumentParser
import Foundation
import Logging
import RunwardenCore

/// `--log-format text|json`: how `serve` and `runner` write their logs (to stderr); read by
/// `Settings.logFormat`.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json

    /// Installs the format for every logger made after this; call once, before making any.
    func bootstrap(level: Logger.Level) {
        switch self {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = TextLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// `--log-level` and `--log-format`, shared by `serve` and `runner`.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error (env RUNWARDEN_LOG_LEVEL, default info).")
    var logLevel: String?
    @Option(help: "Log format: text or json, one object per line (env RUNWARDEN_LOG_FORMAT, default text).")
    var logFormat: LogFormat?

    /// Installs the chosen format and level, and returns the command's logger.
    func bootstrap(_ settings: Settings, label: String) throws -> Logger {
        let level = try settings.logLevel(logLevel)
        try settings.logFormat(logFormat).bootstrap(level: level)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

/// One JSON object per line — `ts`, `level`, `logger`, `message`, then every metadata key
/// (`run_id`, `task_id`, `request_id`, …) at the top level — for log shippers.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var members: [JSONValue.Member] = [
            .init("ts", .string(Timestamp(Date()).iso8601)), .init("level", .string(event.level.rawValue)),
            .init("logger", .string(label)), .init("message", .string(event.message.description)),
        ]
        if let error = event.error { members.append(.init("error", .string(String(describing: error)))) }
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for key in merged.keys.sorted() {
            members.append(.init(key, Self.json(merged[key]!)))
        }
        var line = JSONValue.object(members).encoded()
        line.append(0x0A)
        FileHandle.standardError.write(line)
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let dictionary):
            .object(dictionary.keys.sorted().map { JSONValue.Member($0, json(dictionary[$0]!)) })
        }
    }
}
