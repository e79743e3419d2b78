import Foundation
import RunwardenClient
import RunwardenCore
import Testing

/// Task logs with a real runner and server (SPEC §9): shipped while the task runs, every line
/// once across a server crash, capped keeping both ends, secrets masked.
@Suite("Task logs end to end")
struct TaskLogEndToEndTests {
    struct LogText {
        var text: String
        var complete: Bool
        var truncated: Int64
    }

    /// The whole kept log of the task's latest attempt, read page by page as a client would.
    static func read(_ cluster: Cluster, _ taskID: String, attempt: Int? = nil) async throws -> LogText {
        var text = ""
        var offset: Int64 = 0
        var read = LogText(text: "", complete: false, truncated: 0)
        while true {
            let query = [("offset", String(offset))] + (attempt.map { [("attempt", String($0))] } ?? [])
            let answer = try await cluster.client.send(.GET, "/v1/tasks/\(taskID)/logs", query: query)
            let page = String(decoding: answer.body, as: UTF8.self)
            text += page
            read.complete = answer.headers.first(name: "Log-Complete") == "true"
            read.truncated = Int64(answer.headers.first(name: "Log-Truncated-Bytes") ?? "") ?? -1
            let next = Int64(answer.headers.first(name: "Log-Next-Offset") ?? "") ?? offset
            if page.isEmpty && next == offset { break }
            offset = next
        }
        read.text = text
        return read
    }

    /// Polls until `condition` holds for the log (or `limit` passes); the last read.
    static func poll(
        _ cluster: Cluster, _ taskID: String, attempt: Int? = nil, within limit: Duration = .seconds(30),
        until condition: (LogText) -> Bool
    ) async throws -> LogText {
        let deadline = ContinuousClock.now + limit
        var last = try await read(cluster, taskID, attempt: attempt)
        while !condition(last), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            last = try await read(cluster, taskID, attempt: attempt)
        }
        return last
    }

    static func firstTaskID(_ cluster: Cluster, _ runID: String) async throws -> String {
        try #require(try await cluster.client.run(runID).tasks?.first?.id)
    }

    static let fiftyLines = #"{"workflow": "logs", "tasks": [{"name": "count", "command": "for i in $(seq 1 50); do echo line $i; sleep 0.1; done"}]}"#
    static let expected = (1...50).map { "line \($0)\n" }.joined()

    @Test("a running task's lines reach the server while it runs, each once and in order, and the log completes after it")
    func linesArriveWhileTheTaskRuns() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(Self.fiftyLines)
        let taskID = try await Self.firstTaskID(cluster, runID)
        let early = try await Self.poll(cluster, taskID) { $0.text.contains("line 1\n") }
        #expect(early.text.hasPrefix("line 1\n"))
        let status = try await cluster.client.run(runID).status
        #expect(!status.isTerminal, "line 1 was visible only after the run ended (\(status))")

        #expect(try await cluster.waitForEnd(runID).status == .succeeded)
        let done = try await Self.poll(cluster, taskID) { $0.complete }
        #expect(done.complete)
        #expect(done.text == Self.expected)
    }

    @Test("a server killed with SIGKILL mid-task and restarted still ends up with every line exactly once")
    func serverCrashLosesAndDoublesNothing() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(Self.fiftyLines)
        let taskID = try await Self.firstTaskID(cluster, runID)
        _ = try await Self.poll(cluster, taskID) { $0.text.contains("line 5\n") }
        await cluster.killServer()
        try await cluster.startServer()

        #expect(try await cluster.waitForEnd(runID, within: .seconds(60)).status == .succeeded)
        let done = try await Self.poll(cluster, taskID) { $0.complete }
        #expect(done.complete)
        #expect(done.text == Self.expected)
    }

    @Test("40 MiB of output against the 16 MiB cap keeps the first and last lines and counts the bytes dropped")
    func capKeepsBothEnds() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(#"{"workflow": "loud", "tasks": [{"name": "seq", "command": ["seq", "1", "5400000"]}]}"#)
        let taskID = try await Self.firstTaskID(cluster, runID)
        #expect(try await cluster.waitForEnd(runID, within: .seconds(60)).status == .succeeded)
        #expect(try await Self.poll(cluster, taskID, within: .seconds(60)) { $0.complete }.complete)
        // Read again once complete: a read made while bytes still arrived took some of the
        // newest bytes that later ones pushed out of the cap.
        let done = try await Self.read(cluster, taskID)
        #expect(done.complete)
        let written = (1...5_400_000).reduce(Int64(0)) { $0 + Int64(String($1).utf8.count + 1) }
        #expect(written > 40 << 20)
        #expect(done.truncated == written - (16 << 20))
        #expect(done.text.hasPrefix("1\n2\n3\n"))
        #expect(done.text.hasSuffix("5399999\n5400000\n"))
        #expect(Int64(done.text.utf8.count) == 16 << 20)
    }

    @Test("secret_env values are masked in the stored log even when written in two pieces, and shown nowhere else")
    func secretsAreMasked() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(
            #"""
            {"workflow": "secret", "tasks": [{"name": "leak", "secret_env": {"TOKEN": "hunter2-secret"},
              "command": "echo \"$TOKEN\" >&2; sleep 0.3; printf 'token=hunter2-'; sleep 0.7; printf 'secret done\\n'"}]}
            """#)
        let taskID = try await Self.firstTaskID(cluster, runID)
        #expect(try await cluster.waitForEnd(runID).status == .succeeded)
        let done = try await Self.poll(cluster, taskID) { $0.complete }
        #expect(done.text == "***\ntoken=*** done\n", "stderr first (the task waits 0.3 s between), then the split secret")
        #expect(!done.text.contains("hunter2"))
        for path in ["/v1/runs/\(runID)", "/v1/runs/\(runID)/events", "/v1/tasks/\(taskID)", "/v1/events"] {
            let body = String(decoding: try await cluster.client.send(.GET, path).body, as: UTF8.self)
            #expect(!body.contains("hunter2"), "\(path) shows the secret")
        }
    }

    @Test("a runner killed with SIGKILL ships the rest of the attempt's log file when it starts again")
    func runnerRestartShipsTheRest() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--lease", "3s"])
        let runner = try cluster.startRunner()
        let runID = try await cluster.submit(Self.fiftyLines)
        let taskID = try await Self.firstTaskID(cluster, runID)
        _ = try await Self.poll(cluster, taskID) { $0.text.contains("line 3\n") }
        runner.signal(SIGKILL)
        _ = await runner.waitForExit()
        try cluster.startRunner()  // same name and work dir: stops the task left behind, ships its log

        let file = cluster.directory.appendingPathComponent("work-host-a/logs/\(taskID).1.log")
        let done = try await Self.poll(cluster, taskID, attempt: 1) { $0.complete }
        let local = try String(contentsOf: file, encoding: .utf8)
        #expect(done.complete)
        #expect(local.hasPrefix("line 1\nline 2\nline 3\n"))
        #expect(done.text == local, "the server's copy of attempt 1 is the runner's file, whole")
    }

    @Test("a run that ended has its tasks' logs whole: the runner ships the rest before it reports the end")
    func logsAreWholeWhenTheRunEnds() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(
            #"""
            {"workflow": "quick", "tasks": [{"name": "a", "command": "echo first; sleep 0.3; echo last"},
              {"name": "b", "needs": ["a"], "command": "echo only"}]}
            """#)
        let run = try await cluster.waitForEnd(runID)
        #expect(run.status == .succeeded)
        let logs = try await (run.tasks ?? []).asyncMap { try await Self.read(cluster, $0.id) }
        #expect(logs.map(\.text) == ["first\nlast\n", "only\n"])
        #expect(logs.allSatisfy { $0.complete })
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
