import AsyncHTTPClient
import Foundation
import NIOCore
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// `runwarden logs` (SPEC §9) as a real child process against a real server; the test plays
/// the runner through the API (claims, log chunks, reports), so it decides when each byte exists.
@Suite("runwarden logs", .timeLimit(.minutes(5)))
struct LogsCommandTests {
    @Test("Without a task, every task's lines, each after its task's name; the output made safe for a terminal")
    func everyTaskPrefixedByName() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        let runID = try await cluster.submit(
            #"{"workflow": "logs", "tasks": [{"name": "build", "command": "true"}, {"name": "test", "command": "true"}]}"#)
        let tasks = try await cluster.claimAll(2)
        try await cluster.shipLog(tasks["build"], "compiling\n\u{1B}[31mwarning\u{1B}[0m: unused\n\u{1B}]0;pwned\u{07}title\n", at: 0)
        try await cluster.shipLog(tasks["test"], "ok 1\r\nok 2", at: 0)

        let logs = try ChildProcess(["logs", runID, "--server", cluster.url], in: cluster.directory, name: "logs")
        #expect(await logs.waitForExit(within: .seconds(30)) == 0, "\(logs.output)")
        #expect(
            logs.output.split(separator: "\n", omittingEmptySubsequences: false) == [
                "build | compiling", "build | warning: unused", #"build | \x1b]0;pwned\x07title"#, "test | ok 1", "test | ok 2", "",
            ], "\(logs.output)")

        let one = try ChildProcess(["logs", runID, "test", "--server", cluster.url], in: cluster.directory, name: "logs-test")
        #expect(await one.waitForExit(within: .seconds(30)) == 0)
        #expect(one.output == "ok 1\nok 2\n", "one task: its lines alone")

        let unknown = try ChildProcess(["logs", runID, "deploy", "--server", cluster.url], in: cluster.directory, name: "logs-unknown")
        #expect(await unknown.waitForExit(within: .seconds(30)) == 1)
        #expect(unknown.output.contains("has no task named deploy"), "\(unknown.output)")
    }

    @Test("-f prints the lines shipped while it runs, and ends once the attempt's output is complete")
    func followPrintsLiveLinesAndEndsWithTheAttempt() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        let runID = try await cluster.submit(#"{"workflow": "logs", "tasks": [{"name": "build", "command": "true"}]}"#)
        let taskID = try #require(try await cluster.claimAll(1)["build"])
        try await cluster.shipLog(taskID, "line 1\n", at: 0)

        let logs = try ChildProcess(["logs", runID, "build", "-f", "--server", cluster.url], in: cluster.directory, name: "logs")
        #expect(await logs.waitForOutput("line 1\n", within: .seconds(30)), "\(logs.output)")
        try await cluster.shipLog(taskID, "line 2\n", at: 7)
        #expect(await logs.waitForOutput("line 2\n", within: .seconds(30)), "\(logs.output)")
        #expect(logs.isRunning, "it ended before the attempt's output was complete")

        try await cluster.shipLog(taskID, "", at: 14, final: true)
        _ = try await cluster.client.report(taskID: taskID, body: .object(["status": .string("succeeded"), "exit_code": .int(0)]), runner: "host-a")
        #expect(await logs.waitForExit(within: .seconds(30)) == 0, "\(logs.output)")
        #expect(logs.output == "line 1\nline 2\n")
    }

    @Test("-f follows a task across its retry: the next attempt's lines after a note, then it ends with the task")
    func followContinuesWithTheNextAttempt() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--lease", "1s"])
        let runID = try await cluster.submit(
            #"{"workflow": "logs", "tasks": [{"name": "flaky", "command": "true", "retries": 1}]}"#)
        let taskID = try #require(try await cluster.claimAll(1)["flaky"])
        try await cluster.shipLog(taskID, "try 1\n", at: 0)

        let logs = try ChildProcess(["logs", runID, "-f", "--server", cluster.url], in: cluster.directory, name: "logs")
        #expect(await logs.waitForOutput("flaky | try 1\n", within: .seconds(30)), "\(logs.output)")
        try await cluster.shipLog(taskID, "", at: 6, final: true)
        // No heartbeat: the lease runs out and the task is queued again as attempt 2.
        let again = try await cluster.claimAll(1, within: .seconds(30))
        #expect(again["flaky"] == taskID)
        try await cluster.shipLog(taskID, "try 2\n", at: 0, attempt: 2, final: true)
        _ = try await cluster.client.report(
            taskID: taskID, body: .object(["status": .string("succeeded"), "exit_code": .int(0), "attempt": .int(2)]), runner: "host-a")
        #expect(await logs.waitForExit(within: .seconds(30)) == 0, "\(logs.output)")
        #expect(logs.output == "flaky | try 1\nflaky | [runwarden: attempt 2]\nflaky | try 2\n")

        let first = try ChildProcess(["logs", runID, "flaky", "--attempt", "1", "--server", cluster.url], in: cluster.directory, name: "logs-1")
        #expect(await first.waitForExit(within: .seconds(30)) == 0)
        #expect(first.output == "try 1\n", "--attempt 1: the first attempt's output")
    }

    @Test("A log longer than the server's cap prints its head, a line saying how many bytes were dropped, and its newest lines")
    func droppedBytesAreNoted() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--log-max-bytes", "1KiB"])
        let runID = try await cluster.submit(#"{"workflow": "logs", "tasks": [{"name": "big", "command": "true"}]}"#)
        let taskID = try #require(try await cluster.claimAll(1)["big"])
        // 100 lines of 30 bytes: the first 512 bytes and the newest 512 are kept.
        let lines = (1...100).map { String(format: "line %03d ", $0) + String(repeating: "x", count: 20) + "\n" }
        try await cluster.shipLog(taskID, lines.joined(), at: 0)

        let logs = try ChildProcess(["logs", runID, "--server", cluster.url], in: cluster.directory, name: "logs")
        #expect(await logs.waitForExit(within: .seconds(30)) == 0, "\(logs.output)")
        let printed = logs.output.split(separator: "\n").map(String.init)
        // Each side of the gap ends or starts mid-line: the pieces print as lines of their own.
        let kept = lines.joined().prefix(512).split(separator: "\n") + lines.joined().suffix(512).split(separator: "\n")
        let expected = kept.map { "big | \($0)" }
        #expect(printed.first == "big | line 001 xxxxxxxxxxxxxxxxxxxx")
        #expect(printed.last == "big | line 100 xxxxxxxxxxxxxxxxxxxx")
        #expect(printed.contains("big | [runwarden: 1976 bytes dropped here to keep the log within its cap]"), "\(logs.output)")
        #expect(printed.filter { !$0.contains("[runwarden:") } == expected, "\(logs.output)")
    }
}

extension LogsCommandTests {
    @Test("A real runner's task: logs -f shows line 1 before the task ends, then every line once, in order, and ends with it")
    func followARealRunnersTask() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(
            #"{"workflow": "logs", "tasks": [{"name": "count", "command": "for i in $(seq 1 50); do echo line $i; sleep 0.1; done"}]}"#)

        let logs = try ChildProcess(["logs", runID, "count", "-f", "--server", cluster.url], in: cluster.directory, name: "logs")
        #expect(await logs.waitForOutput("line 1\n", within: .seconds(30)), "\(logs.output)")
        #expect(try await cluster.client.run(runID).isTerminal == false, "line 1 showed only once the task had ended")
        #expect(await logs.waitForExit(within: .seconds(60)) == 0, "\(logs.output)")
        #expect(logs.output == (1...50).map { "line \($0)\n" }.joined())
        #expect(try await cluster.client.run(runID).status == .succeeded)
    }

    @Test("-f follows more tasks at once than a default connection pool holds: every task's long-poll is parked, every line shows")
    func followManyTasksAtOnce() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        let names = (0..<12).map { "t\($0)" }
        let tasks = names.map { #"{"name": "\#($0)", "command": "true"}"# }.joined(separator: ", ")
        let runID = try await cluster.submit(#"{"workflow": "wide", "tasks": [\#(tasks)]}"#)
        let claimed = try await cluster.claimAll(names.count)

        let logs = try ChildProcess(["logs", runID, "-f", "--server", cluster.url], in: cluster.directory, name: "logs")
        // Each task's read waits on the server at the same time (none queued behind another in the client).
        let parked = await eventually(within: .seconds(20)) {
            let metrics = (try? await cluster.client.send(.GET, "/metrics").body).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let line = metrics.split(separator: "\n").first { $0.hasPrefix(#"runwarden_waiters{topic="log"}"#) }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= Double(names.count) } ?? false
        }
        #expect(parked, "not every task's log is long-polled at once: \(logs.output)")
        for name in names { try await cluster.shipLog(claimed[name], "hello from \(name)\n", at: 0) }
        for name in names {
            #expect(await logs.waitForOutput("\(name) | hello from \(name)\n", within: .seconds(10)), "\(logs.output)")
        }
        for name in names {
            let bytes = "hello from \(name)\n".utf8.count
            try await cluster.shipLog(claimed[name], "", at: bytes, final: true)
            _ = try await cluster.client.report(
                taskID: try #require(claimed[name]), body: .object(["status": .string("succeeded"), "exit_code": .int(0)]), runner: "host-a")
        }
        #expect(await logs.waitForExit(within: .seconds(30)) == 0, "\(logs.output)")
    }
}

extension Cluster {
    /// Claims `count` tasks as runner `host-a` (waiting up to `limit` for them); their ids by name.
    func claimAll(_ count: Int, within limit: Duration = .seconds(10)) async throws -> [String: String] {
        var claimed: [String: String] = [:]
        let deadline = ContinuousClock.now + limit
        while claimed.count < count, ContinuousClock.now < deadline {
            if case .task(let answer) = try await client.claim(runner: "host-a", labels: [], wait: 1) {
                claimed[answer.task.name] = answer.task.id
            }
        }
        try #require(claimed.count == count, "claimed \(claimed) of \(count) tasks")
        return claimed
    }

    /// Ships `text` as runner `host-a` at `offset` of the task's attempt (SPEC §9), the way a
    /// runner does: raw bytes, `POST /v1/tasks/{id}/logs`.
    func shipLog(_ taskID: String?, _ text: String, at offset: Int, attempt: Int = 1, final: Bool = false) async throws {
        let taskID = try #require(taskID)
        var request = HTTPClientRequest(
            url: "\(url)/v1/tasks/\(taskID)/logs?attempt=\(attempt)&offset=\(offset)\(final ? "&final=true" : "")")
        request.method = .POST
        request.headers.add(name: "X-Runner-Name", value: "host-a")
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(ByteBuffer(string: text))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        try #require(response.status == .ok, "shipping a log chunk: \(response.status) \(String(buffer: body))")
    }
}
