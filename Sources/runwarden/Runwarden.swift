import ArgumentParser
import RunwardenCore

@main
struct Runwarden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runwarden",
        abstract: "A self-hosted control plane for asynchronous runs.",
        version: Release.version,
        subcommands: [
            Serve.self, RunnerCommand.self, Submit.self, Status.self, Wait.self, Watch.self, Cancel.self, Rerun.self, Approve.self,
            Reject.self, Runs.self, Events.self, Runners.self, Drain.self, Resume.self, Logs.self,
        ])
}
