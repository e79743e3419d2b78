import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// `deploy/build-release.sh` is how an operator gets a `runwarden` for hosts without Swift: the
/// test runs that recipe as written and uses what it builds as a server and a runner.
///
/// The recipe's build has its own scratch folder, `.build-release-static` in the package, or
/// `$SCRATCH` (kept between local runs, so only the first is slow; CI builds it cold).
@Suite("The release recipe builds a runwarden for hosts without Swift", .timeLimit(.minutes(50)))
struct StaticBinaryTests {

    @Test("deploy/build-release.sh builds a binary without Swift's shared libraries that serves, runs a workflow and knows its version")
    func staticBinaryServesAndRuns() async throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("runwarden-dist-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        var environment = ProcessInfo.processInfo.environment
        // The script's own knob: a caller's SCRATCH (a warm release build elsewhere) is kept.
        environment["SCRATCH"] = environment["SCRATCH"] ?? packageRoot.appendingPathComponent(".build-release-static").path
        let build = try ChildProcess(
            "/bin/bash", [packageRoot.appendingPathComponent("deploy/build-release.sh").path, output.path],
            directory: packageRoot, environment: environment)
        let status = await build.waitForExit(within: .seconds(45 * 60))
        try #require(status == 0, "the recipe failed (\(status.map(String.init) ?? "still running")):\n\(build.output.suffix(4000))")

        let binary = output.appendingPathComponent("runwarden")
        let (_, libraries) = try await ChildProcess.run("/usr/bin/ldd", [binary.path])
        let swiftLibraries = libraries.split(separator: "\n").filter {
            $0.contains("libswift") || $0.contains("libFoundation") || $0.contains("libdispatch") || $0.contains("libBlocksRuntime")
        }
        #expect(swiftLibraries.isEmpty, "the binary still needs Swift's shared libraries:\n\(libraries)")
        for unit in ["runwarden-server.service", "runwarden-runner.service", "server.env.example", "runner.env.example"] {
            #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent(unit).path), "\(unit) is not beside the binary")
        }

        let (_, staticVersion) = try await ChildProcess.run(binary.path, ["--version"])
        let (_, debugVersion) = try await ChildProcess.run(runwardenBinary.path, ["--version"])
        #expect(!staticVersion.isEmpty && staticVersion == debugVersion, "\(staticVersion) vs \(debugVersion)")

        // A server and a runner from the static binary run a two-task workflow to its end.
        let cluster = try Cluster(binary: binary)
        defer { try? FileManager.default.removeItem(at: cluster.directory) }
        try await cluster.startServer()
        try cluster.startRunner(name: "static-host")
        let runID = try await cluster.submit(
            #"""
            {"workflow": "static", "tasks": [
              {"name": "build", "command": "echo built > artifact.txt", "workspace": "ws", "labels": ["linux"]},
              {"name": "check", "command": "grep -q built artifact.txt", "workspace": "ws", "needs": ["build"], "labels": ["linux"]}]}
            """#)
        let run = try await cluster.waitForEnd(runID, within: .seconds(60))
        #expect(run.status == .succeeded, "the run ended \(run.status): \(run.tasks?.map { "\($0.name) \($0.status)" } ?? [])")
        #expect(run.tasks?.allSatisfy { $0.runner == "static-host" } == true)
    }
}
