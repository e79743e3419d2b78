import ArgumentParser
import Foundation
import RunwardenClient

/// `--server` / `--token`, with `RUNWARDEN_URL` / `RUNWARDEN_TOKEN` as fallbacks.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Server URL; repeat or comma-separate for failover (env RUNWARDEN_URL, default http://127.0.0.1:8080).")
    var server: [String] = []
    @Option(help: "Client token (env RUNWARDEN_TOKEN).") var token: String?

    var servers: [String] {
        let given = server.flatMap { $0.split(separator: ",").map(String.init) }
        if !given.isEmpty { return given }
        if let env = ProcessInfo.processInfo.environment["RUNWARDEN_URL"], !env.isEmpty {
            return env.split(separator: ",").map(String.init)
        }
        return ["http://127.0.0.1:8080"]
    }

    var resolvedToken: String? {
        token ?? ProcessInfo.processInfo.environment["RUNWARDEN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func client() -> RunwardenClient { RunwardenClient(servers: servers, token: resolvedToken) }
}

/// Runs a client command; a failure becomes one clear line on stderr and exit code `code`.
func reportingErrors(exitCode code: Int32 = 1, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(code)
    }
}
