import Foundation
import RunwardenClient
import RunwardenTestSupport
import Testing

/// SPEC §6: a task never inherits the runner's credentials; `--token-file` gives the runner its
/// token without putting it in its environment or command line.
@Suite("task environment and token files", .serialized, .timeLimit(.minutes(2)))
struct TaskEnvironmentTests {
    @Test("a task sees none of the runner's RUNWARDEN_* variables, the six the runner sets, and its own env")
    func taskEnvironment() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--client-token", "client-secret", "--runner-token", "runner-secret"])
        cluster.clientToken = "client-secret"
        let tokenFile = cluster.directory.appendingPathComponent("runner.token")
        try Data("runner-secret\n".utf8).write(to: tokenFile)
        chmod(tokenFile.path, 0o600)
        let inherited = ProcessInfo.processInfo.environment
        try cluster.startRunner(
            extraArguments: ["--token-file", tokenFile.path],
            environment: [
                "PATH": inherited["PATH"] ?? "/usr/bin:/bin", "HOME": inherited["HOME"] ?? "/tmp",
                "RUNWARDEN_RUNNER_TOKEN": "leaked-runner-token", "RUNWARDEN_TOKEN": "leaked-client-token",
                "RUNWARDEN_TOKEN_FILE": tokenFile.path, "RUNWARDEN_URL": cluster.url, "RUNWARDEN_LOG_FORMAT": "text",
                "RUNWARDEN_ANYTHING": "leaked-anything",
            ])
        let runID = try await cluster.submit(
            #"""
            {"workflow": "env", "tasks": [{"name": "printenv", "command": "env > env.txt", "workspace": "envws",
              "env": {"RUNWARDEN_TASK_NAME": "forged", "RUNWARDEN_SUBMITTED": "mine", "PLAIN": "yes"}}]}
            """#)
        let run = try await cluster.waitForEnd(runID)
        #expect(run.status == .succeeded)
        let text = try String(contentsOf: cluster.workspace("envws").appendingPathComponent("env.txt"), encoding: .utf8)
        var seen: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            seen[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        #expect(!text.contains("leaked-"), "\(text)")
        #expect(!text.contains("runner-secret"))
        for name in ["RUNWARDEN_RUNNER_TOKEN", "RUNWARDEN_TOKEN", "RUNWARDEN_TOKEN_FILE", "RUNWARDEN_URL", "RUNWARDEN_LOG_FORMAT"] {
            #expect(seen[name] == nil, "\(name) reached the task")
        }
        let task = try #require(run.tasks?.first)
        #expect(seen["RUNWARDEN_RUN_ID"] == runID)
        #expect(seen["RUNWARDEN_TASK_ID"] == task.id)
        #expect(seen["RUNWARDEN_TASK_NAME"] == "printenv")  // the runner's value wins over the task's env
        #expect(seen["RUNWARDEN_ATTEMPT"] == "1")
        #expect(seen["RUNWARDEN_WORKSPACE"].map { URL(fileURLWithPath: $0).standardized.path } == cluster.workspace("envws").standardized.path)
        #expect(seen["RUNWARDEN_SERVER_URL"] == cluster.url)
        #expect(seen["RUNWARDEN_SUBMITTED"] == "mine")
        #expect(seen["PLAIN"] == "yes")
        #expect(seen["PATH"] != nil)
    }

    @Test("--token and --token-file together are refused; a token file others can read is used with a warning")
    func tokenFileRules() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--client-token", "client-secret", "--runner-token", "runner-secret"])
        let tokenFile = cluster.directory.appendingPathComponent("client.token")
        try Data("client-secret\r\n".utf8).write(to: tokenFile)
        chmod(tokenFile.path, 0o644)
        let both = try ChildProcess(
            ["runner", "--server", cluster.url, "--token", "x", "--token-file", tokenFile.path, "--work-dir", "w"],
            in: cluster.directory, name: "both")
        #expect(await both.waitForExit() != 0)
        #expect(both.output.contains("--token or --token-file, not both"))

        let runs = try ChildProcess(["runs", "--server", cluster.url, "--token-file", tokenFile.path], in: cluster.directory, name: "runs")
        #expect(await runs.waitForExit() == 0, "\(runs.output)")
        #expect(runs.output.contains("readable by other users"))
        #expect(runs.output.contains("RUN"))
    }
}
