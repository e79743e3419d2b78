import ArgumentParser
import Foundation
import RunwardenClient
import RunwardenCore

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Submit a workflow file (YAML or JSON); prints the run id.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The workflow file.") var file: String
    @Option(help: "Idempotency key: submitting again with the same key and file answers the same run.") var idempotencyKey: String?

    func run() async throws {
        try await reportingErrors {
            let body = try WorkflowFile.load(path: file)
            let run = try await options.client().createRun(body, idempotencyKey: idempotencyKey)
            print(RunDisplay.shown(run.id))
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a run: its status and a table of its tasks.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The run id.") var id: String
    @Flag(help: "Print the snapshot as JSON.") var json = false

    func run() async throws {
        try await reportingErrors {
            let client = try options.client()
            if json {
                let answer = try await client.send(.GET, "/v1/runs/" + id)
                print(TerminalText.escapedJSON(String(decoding: answer.body, as: UTF8.self)))
            } else {
                print(RunDisplay.summary(try await client.run(id)))
            }
        }
    }
}

/// `runwarden wait`: follows a run until it ends; the exit code tells how it ended.
struct Wait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait for a run to end. Exit code: 0 succeeded, 1 failed, 2 canceled, 3 timed_out, 4 error.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The run id.") var id: String
    @Option(help: "Give up after this many seconds (exit code 4).") var timeout: Int?

    func run() async throws {
        try await reportingErrors(exitCode: 4) {
            let client = try options.client()
            let deadline = timeout.map { ContinuousClock.now + .seconds($0) }
            let interactive = isatty(STDOUT_FILENO) == 1
            // Progress and status are all it shows: the run without its tasks, however wide.
            var run = try await client.run(id, tasks: false)
            var printed = -1
            while true {
                if run.version != printed {
                    print(interactive ? RunDisplay.progressBar(run) : RunDisplay.progressLine(run), terminator: interactive ? "" : "\n")
                    fflush(nil)  // all streams: referencing `stdout` is not concurrency-safe
                    printed = run.version
                }
                if run.isTerminal { break }
                if let deadline, ContinuousClock.now >= deadline {
                    if interactive { print("") }
                    throw WaitTimeout(seconds: timeout ?? 0)
                }
                run = try await client.nextVersion(of: run, tasks: false)
            }
            if interactive { print("") }
            if let error = run.error { print("error: \(RunDisplay.shown(error.code)): \(TerminalText.escapedBlock(error.message))") }
            throw ExitCode(RunDisplay.exitCode(for: run.status))
        }
    }

    struct WaitTimeout: Error, CustomStringConvertible {
        var seconds: Int
        var description: String { "the run did not end within \(seconds) s" }
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a run's task table live until the run ends.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The run id.") var id: String

    func run() async throws {
        try await reportingErrors {
            let client = try options.client()
            let interactive = isatty(STDOUT_FILENO) == 1
            var run = try await client.run(id)
            while true {
                // On a terminal, redraw in place; otherwise print each state once.
                if interactive { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                print(RunDisplay.summary(run))
                if !interactive { print("") }
                fflush(nil)  // all streams: referencing `stdout` is not concurrency-safe
                if run.isTerminal { return }
                run = try await client.nextVersion(of: run)
            }
        }
    }
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a run.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The run id.") var id: String

    func run() async throws {
        try await reportingErrors {
            let run = try await options.client().cancel(id)
            print("\(RunDisplay.shown(run.id)) \(RunDisplay.shown(run.status.rawValue))")
        }
    }
}

/// `runwarden rerun`: a new run of a finished one, repeating what failed or the named tasks.
struct Rerun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-run a finished run as a new run; prints the new run id.",
        discussion: """
            The selected tasks and every task that needs them run again; the others are copied as \
            succeeded (reused_from) and run nothing. Without --task, every task that did not succeed is selected.
            """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "The finished run's id.") var id: String
    @Flag(help: "Run again every task that did not succeed (the default).") var failed = false
    @Option(name: .customLong("task"), help: "Run this task again (repeatable).") var tasks: [String] = []
    @Option(help: "Idempotency key: asking again with the same key answers the same new run.") var idempotencyKey: String?

    func validate() throws {
        if failed, !tasks.isEmpty { throw ValidationError("give --failed or --task, not both") }
    }

    func run() async throws {
        try await reportingErrors {
            let run = try await options.client().rerun(id, tasks: tasks.isEmpty ? nil : tasks, idempotencyKey: idempotencyKey)
            print(RunDisplay.shown(run.id))
        }
    }
}

/// `runwarden approve` and `runwarden reject`: a person's decision on an approval task.
struct Approve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Approve an approval task waiting for a decision; it succeeds.")
    @OptionGroup var decision: ApprovalOptions

    func run() async throws { try await decision.send(approved: true) }
}

struct Reject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reject an approval task waiting for a decision; it fails (rejected).")
    @OptionGroup var decision: ApprovalOptions

    func run() async throws { try await decision.send(approved: false) }
}

struct ApprovalOptions: ParsableArguments {
    @OptionGroup var options: ClientOptions
    @Argument(help: "The approval task's id (task_…).") var taskID: String
    @Option(help: "A comment kept with the decision.") var comment: String?

    func send(approved: Bool) async throws {
        try await reportingErrors {
            let task = try await options.client().decideApproval(taskID, approved: approved, comment: comment)
            print("\(RunDisplay.shown(task.id)) \(RunDisplay.shown(task.status.rawValue))")
        }
    }
}

struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Only runs with this status.") var status: String?
    @Option(help: "Only runs of this workflow.") var workflow: String?
    @Option(help: "How many (at most 500).") var limit: Int = 20
    @Option(help: "Continue from a previous page's cursor.") var cursor: String?
    @Option(help: ArgumentHelp("Only runs whose metadata KEY is exactly the string VALUE (repeatable; all must match).", valueName: "KEY=VALUE"))
    var metadata: [String] = []
    @Option(help: ArgumentHelp("Only runs created at or after this ISO 8601 time.", valueName: "time")) var createdAfter: String?
    @Option(help: ArgumentHelp("Only runs created before this ISO 8601 time.", valueName: "time")) var createdBefore: String?

    /// `KEY=VALUE` pairs split at the first `=`; the key must not be empty.
    var metadataPairs: [(key: String, value: String)] {
        get throws {
            try metadata.map { pair in
                guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                    throw ValidationError("--metadata takes KEY=VALUE, not \"\(pair)\"")
                }
                return (String(pair[..<equals]), String(pair[pair.index(after: equals)...]))
            }
        }
    }

    func validate() throws { _ = try metadataPairs }

    func run() async throws {
        try await reportingErrors {
            let list = try await options.client().runs(
                status: status, workflow: workflow, limit: limit, cursor: cursor, metadata: try metadataPairs,
                createdAfter: createdAfter, createdBefore: createdBefore)
            print(RunDisplay.runTable(list.items))
            if let next = list.nextCursor { print("more: --cursor \(RunDisplay.shown(next))") }
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a run's event timeline.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The run id.") var id: String
    @Flag(help: "Keep following new events until the run ends.") var follow = false

    func run() async throws {
        try await reportingErrors {
            let client = try options.client()
            var after: Int64 = 0
            while true {
                let page = try await client.events(runID: id, after: after, limit: 500, wait: follow ? 25 : nil)
                for event in page.events { print(RunDisplay.eventLine(event)) }
                after = page.nextAfter
                let ended = page.events.contains { $0.runStatus?.isTerminal == true }
                if ended || (!follow && page.events.count < 500) { return }
            }
        }
    }
}
