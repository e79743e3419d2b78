import ArgumentParser

@main
struct Runwarden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runwarden",
        abstract: "A self-hosted control plane for asynchronous runs.",
        subcommands: [Serve.self])
}
