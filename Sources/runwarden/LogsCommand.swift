import ArgumentParser
import Foundation
import RunwardenClient

/// `runwarden logs` (SPEC §9): the thin terminal end of `LogFollower`.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a task's output; without a task, every task's, each line after its task's name.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The run id.") var id: String
    @Argument(help: "The task's name (default: every task of the run).") var task: String?
    @Option(help: "The attempt (default: the latest; with --follow, also the ones after it).") var attempt: Int?
    @Flag(name: [.short, .long], help: "Keep following new output until the run (or the task) ends.") var follow = false

    func validate() throws {
        if let attempt, attempt < 1 { throw ValidationError("--attempt must be 1 or more") }
    }

    func run() async throws {
        try await reportingErrors {
            let follower = LogFollower(client: try options.client(), runID: id, taskName: task, attempt: attempt, follow: follow)
            for try await event in follower.events() {
                print(Self.line(event, prefixed: task == nil))
                fflush(nil)  // all streams: referencing `stdout` is not concurrency-safe
            }
        }
    }

    /// How an event prints: `name | line` for every task, the line alone for one; the task's
    /// output made safe for the terminal (SPEC §6), notes in brackets.
    static func line(_ event: LogFollower.Event, prefixed: Bool) -> String {
        let (task, text): (String, String) =
            switch event {
            case .line(let task, let text): (task, TerminalText.logLine(text))
            case .dropped(let task, let bytes): (task, "[runwarden: \(bytes) bytes dropped here to keep the log within its cap]")
            case .attempt(let task, let number): (task, "[runwarden: attempt \(number)]")
            case .expired(let task, let attempt): (task, "[runwarden: the log of attempt \(attempt) was removed (--log-retention)]")
            }
        return prefixed ? "\(TerminalText.escaped(task)) | \(text)" : text
    }
}
