import Foundation
import RunwardenClient
import RunwardenCore
import Testing

/// The built `runwarden` executable, next to this test bundle.
let runwardenBinary: URL = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // Running from inside an .xctest bundle: the products sit beside the bundle.
    while directory.pathExtension == "xctest" || directory.lastPathComponent == "Contents" || directory.lastPathComponent == "MacOS" {
        directory.deleteLastPathComponent()
    }
    return directory.appendingPathComponent("runwarden")
}()

/// A real `runwarden` child process, its output captured to a file in the test's folder.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let outputURL: URL

    /// `environment` replaces the test's own environment when given.
    init(_ arguments: [String], in directory: URL, name: String, environment: [String: String]? = nil) throws {
        outputURL = directory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL)
        try output.seekToEnd()
        process.executableURL = runwardenBinary
        process.arguments = arguments
        process.currentDirectoryURL = directory
        if let environment { process.environment = environment }
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the process to end, up to `limit`; kills it if it has not.
    func waitForExit(within limit: Duration = .seconds(15)) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
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

    var url: String { "http://127.0.0.1:\(port)" }
    var client: RunwardenClient { RunwardenClient(servers: [url], token: clientToken) }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("runwarden-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Starts the server (on a free port the first time, on the same port after a restart) and
    /// waits until it says where it listens.
    func startServer(_ extraArguments: [String] = []) async throws {
        let attempt = (server?.process.processIdentifier ?? 0) + 1
        server = try ChildProcess(
            ["serve", "--port", String(port), "--database", directory.appendingPathComponent("runwarden.sqlite").path]
                + extraArguments,
            in: directory, name: "server-\(attempt)")
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if let line = server.output.split(separator: "\n").first(where: { $0.contains("listening on http://127.0.0.1:") }),
                let portText = line.split(separator: ":").last?.split(separator: " ").first, let bound = Int(portText)
            {
                port = bound
                return
            }
            if !server.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
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
            ] + extraArguments, in: directory, name: "runner-\(name)", environment: environment)
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
        for runner in runners where runner.process.isRunning { kill(runner.process.processIdentifier, SIGKILL) }
        if let server, server.process.isRunning { kill(server.process.processIdentifier, SIGKILL) }
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
