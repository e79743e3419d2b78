import ArgumentParser
import Foundation
import RunwardenClient

/// `--server`, `--token` or `--token-file`, `--ca-file`, with `RUNWARDEN_URL`, `RUNWARDEN_TOKEN`
/// or `RUNWARDEN_TOKEN_FILE`, `RUNWARDEN_CA_FILE` as fallbacks.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Server URL; repeat or comma-separate for failover (env RUNWARDEN_URL, default http://127.0.0.1:8080).")
    var server: [String] = []
    @Option(help: "Client token (env RUNWARDEN_TOKEN).") var token: String?
    @Option(help: "Read the client token from this file (env RUNWARDEN_TOKEN_FILE).") var tokenFile: String?
    @Option(help: "Trust the CA certificates in this PEM file for https:// servers (env RUNWARDEN_CA_FILE).") var caFile: String?

    /// Read through `Settings`, as every command's settings are; `settings` is for tests.
    func client(_ settings: Settings = Settings()) throws -> RunwardenClient {
        let token = try TokenSource.resolve(token: token, tokenFile: tokenFile, environmentNames: ["RUNWARDEN_TOKEN"], settings: settings)
        let caFile = settings.value(caFile, env: "RUNWARDEN_CA_FILE")
        return RunwardenClient(servers: settings.servers(server), token: token, http: try RunwardenClient.http(caFile: caFile))
    }
}

/// Runs a client command; a failure becomes one clear line on stderr and exit code `code`.
func reportingErrors(exitCode code: Int32 = 1, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        // The description may hold a server's error message: escaped like everything it sends.
        FileHandle.standardError.write(Data("error: \(TerminalText.escapedBlock(String(describing: error)))\n".utf8))
        throw ExitCode(code)
    }
}
