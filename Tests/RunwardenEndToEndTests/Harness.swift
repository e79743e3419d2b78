import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

extension ChildProcess {
    /// A real `runwarden` child process run in `directory`, its output in `directory/NAME.log`.
    /// `environment` replaces the test's own environment when given.
    convenience init(
        _ arguments: [String], in directory: URL, name: String, environment: [String: String]? = nil, binary: URL = runwardenBinary
    ) throws {
        try self.init(
            binary.path, arguments, outputTo: directory.appendingPathComponent("\(name).log"), directory: directory,
            environment: environment)
    }

    /// The URL a `runwarden serve` says it listens on ("Runwarden listening on SCHEME://127.0.0.1:PORT — …"),
    /// read from its output: with `--port 0` the server picks the port and this is how a test
    /// learns it. Nil when the server ended first or `limit` passed.
    func listeningURL(within limit: Duration = .seconds(20)) async -> String? {
        await waitFor(within: limit) {
            guard let range = output.range(of: "Runwarden listening on ") else { return nil }
            let url = output[range.upperBound...].prefix { !$0.isWhitespace }
            return url.contains(":") && url.last?.isNumber == true ? String(url) : nil
        }
    }
}

/// A server and runners in a fresh temp folder, all on loopback; everything is killed when
/// the test's `Cluster` goes away.
final class Cluster: @unchecked Sendable {
    let directory: URL
    private(set) var server: ChildProcess!
    private(set) var port = 0
    private var runners: [ChildProcess] = []

    /// The client token the test's client sends, for a server started with one.
    var clientToken: String?
    /// The `runwarden` the cluster's processes run: the debug build, unless a test built another.
    let binary: URL

    var url: String { "http://127.0.0.1:\(port)" }
    var client: RunwardenClient { RunwardenClient(servers: [url], token: clientToken) }

    init(binary: URL = runwardenBinary) throws {
        self.binary = binary
        directory = try TestScratch.directory("e2e")
    }

    /// Starts the server (on a free port the first time, on the same port after a restart) and
    /// waits until it says where it listens.
    func startServer(_ extraArguments: [String] = []) async throws {
        let attempt = (server?.pid ?? 0) + 1
        server = try ChildProcess(
            ["serve", "--port", String(port), "--database", directory.appendingPathComponent("runwarden.sqlite").path]
                + extraArguments,
            in: directory, name: "server-\(attempt)", binary: binary)
        if let url = await server.listeningURL(), let bound = url.split(separator: ":").last.flatMap({ Int($0) }) {
            port = bound
            return
        }
        Issue.record("server did not start: \(server.output)")
        throw ClusterError.serverDidNotStart
    }

    func killServer() async {
        server.signal(SIGKILL)
        _ = await server.waitForExit()
    }

    @discardableResult
    func startRunner(
        name: String = "host-a", labels: String = "linux", concurrency: Int = 4, extraArguments: [String] = [],
        environment: [String: String]? = nil
    ) throws -> ChildProcess {
        let runner = try ChildProcess(
            [
                "runner", "--server", url, "--name", name, "--labels", labels, "--concurrency", String(concurrency),
                "--work-dir", directory.appendingPathComponent("work-\(name)").path, "--kill-grace", "2s",
            ] + extraArguments, in: directory, name: "runner-\(name)", environment: environment, binary: binary)
        runners.append(runner)
        return runner
    }

    func workspace(_ name: String, runner: String = "host-a") -> URL {
        directory.appendingPathComponent("work-\(runner)/workspaces/\(name)")
    }

    /// Submits a create body and returns the run id.
    func submit(_ json: String) async throws -> String {
        try await client.createRun(try JSONValue.parse(Data(json.utf8))).id
    }

    /// Long-polls until the run is terminal, up to `limit`.
    func waitForEnd(_ runID: String, within limit: Duration = .seconds(30)) async throws -> RunSnapshot {
        let deadline = ContinuousClock.now + limit
        var run = try await client.run(runID)
        while !run.isTerminal, ContinuousClock.now < deadline {
            do {
                run = try await client.run(runID, afterVersion: run.version, wait: 2)
            } catch let error as ClientError where error.isTransient {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        return run
    }

    deinit {
        for runner in runners { runner.stop() }
        server?.stop()
    }
}

enum ClusterError: Error { case serverDidNotStart }

/// Processes whose command line contains `marker` (read from /proc): proof that none is left.
func processes(matching marker: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry in
        guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
        let commandLine = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        return commandLine.contains(marker) ? pid : nil
    }
}
