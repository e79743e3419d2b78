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

    var servers: [String] {
        let given = server.flatMap { $0.split(separator: ",").map(String.init) }
        if !given.isEmpty { return given }
        if let env = ProcessInfo.processInfo.environment["RUNWARDEN_URL"], !env.isEmpty {
            return env.split(separator: ",").map(String.init)
        }
        return ["http://127.0.0.1:8080"]
    }

    func client() throws -> RunwardenClient {
        let token = try TokenSource.resolve(token: token, tokenFile: tokenFile, environmentNames: ["RUNWARDEN_TOKEN"])
        return RunwardenClient(servers: servers, token: token, http: try RunwardenClient.http(caFile: CAFileOption.resolve(caFile)))
    }
}

/// `--ca-file`, else `RUNWARDEN_CA_FILE`: shared by the client commands and the runner.
enum CAFileOption {
    static func resolve(_ flag: String?) -> String? {
        flag ?? ProcessInfo.processInfo.environment["RUNWARDEN_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }
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
