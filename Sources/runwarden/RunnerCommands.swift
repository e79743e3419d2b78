import ArgumentParser
import RunwardenClient
import RunwardenCore

/// `runwarden runners`: the registry as a table (SPEC §8).
struct Runners: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List runners: status, labels, running tasks, last contact.")
    @OptionGroup var options: ClientOptions
    @Option(help: "How many (at most 500).") var limit: Int = 100
    @Option(help: "Continue from a previous page's cursor.") var cursor: String?

    func run() async throws {
        try await reportingErrors {
            let page = try await options.client().runners(limit: limit, cursor: cursor)
            print(RunDisplay.runnerTable(page.items))
            if let next = page.nextCursor { print("more: --cursor \(RunDisplay.shown(next))") }
        }
    }
}

/// `runwarden drain NAME`: the runner takes no new task; what it runs finishes.
struct Drain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Drain a runner: it takes no new tasks; running ones finish.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The runner's name.") var name: String

    func run() async throws { try await setDraining(true, runner: name, options: options) }
}

/// `runwarden resume NAME`: a drained runner takes tasks again.
struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Resume a drained runner: it takes tasks again.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The runner's name.") var name: String

    func run() async throws { try await setDraining(false, runner: name, options: options) }
}

/// `drain` and `resume`: one call, then the runner's name and status.
private func setDraining(_ draining: Bool, runner name: String, options: ClientOptions) async throws {
    try await reportingErrors {
        print(RunDisplay.runnerLine(try await options.client().setDraining(draining, runner: name)))
    }
}

extension RunDisplay {
    /// `draining` is shown with the status: it is what an operator drained it for.
    static func runnerStatus(_ runner: RunnerItem) -> String {
        shown(runner.status.rawValue) + (runner.draining ? " (draining)" : "")
    }

    static func runnerTable(_ runners: [RunnerItem]) -> String {
        let rows = runners.map { runner in
            [
                shown(runner.name), runnerStatus(runner), runner.labels.isEmpty ? "-" : shown(runner.labels.joined(separator: ",")),
                String(runner.running.count), shown(runner.lastSeenAt),
            ]
        }
        return table([["NAME", "STATUS", "LABELS", "RUNNING", "LAST SEEN"]] + rows)
    }

    static func runnerLine(_ runner: RunnerItem) -> String { "\(shown(runner.name)) \(runnerStatus(runner))" }
}
