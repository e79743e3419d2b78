import Foundation
import Logging
import RunwardenCore

/// `--log-format text`: one line per event — time, level, logger, sorted `key=value` metadata,
/// message — like swift-log's StreamLogHandler, except that the message and every metadata
/// value have newlines and control characters escaped: a task name, a server's error or a
/// runner name cannot start a forged line of its own or drive the terminal (SPEC §6).
struct TextLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        FileHandle.standardError.write(Data((line(for: event) + "\n").utf8))
    }

    func line(for event: LogEvent) -> String {
        var merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        if let error = event.error { merged["error"] = "\(error)" }
        let fields = merged.keys.sorted().map { "\(TerminalText.escaped($0))=\(Self.text(merged[$0]!))" }
        let head = "\(Timestamp(Date()).iso8601) \(event.level) \(TerminalText.escaped(label)) :"
        return ([head] + fields + [TerminalText.escaped(event.message.description)]).joined(separator: " ")
    }

    private static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): TerminalText.escaped(text)
        case .stringConvertible(let convertible): TerminalText.escaped(convertible.description)
        case .array(let items): "[" + items.map(text).joined(separator: ", ") + "]"
        case .dictionary(let dictionary):
            "[" + dictionary.keys.sorted().map { "\(TerminalText.escaped($0)): \(text(dictionary[$0]!))" }.joined(separator: ", ") + "]"
        }
    }
}
