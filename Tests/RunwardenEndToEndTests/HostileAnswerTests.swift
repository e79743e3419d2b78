import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// SPEC §6: nothing a server answers — a workspace that would leave `--work-dir`, numbers at
/// the edge of Int64, an empty command, control characters — crashes or hijacks the runner or
/// the CLI, or forges their log lines.
@Suite("hostile server answers", .serialized, .timeLimit(.minutes(2)))
struct HostileAnswerTests {
    private static func claimed(_ id: String, command: [String], workspace: String? = nil, timeout: Int? = nil, attempt: Int = 1, lease: Int = 30) -> JSONValue {
        var task: [JSONValue.Member] = [
            .init("id", .string(id)), .init("run_id", .string("run_hostile")), .init("name", .string(id)),
            .init("command", JSONValue(strings: command)), .init("env", .object([])), .init("attempt", .int(Int64(attempt))),
            .init("labels", .array([])),
        ]
        if let workspace { task.append(.init("workspace", .string(workspace))) }
        if let timeout { task.append(.init("timeout_s", .int(Int64(timeout)))) }
        return .object(["status": .int(200), "body": .object(["task": .object(task), "lease_s": .int(Int64(lease))])])
    }

    private static func applied(_ id: String) -> JSONValue {
        .array([.object(["status": .int(200), "body": .object([
            "applied": .bool(true), "task": .object(["id": .string(id), "name": .string(id), "status": .string("failed"), "attempt": .int(1)]),
        ])])])
    }

    @Test("workspaces a/b and .. are refused with launch_failed and nothing is made outside workspaces/; Int64.max numbers and an empty command crash nothing")
    func hostileClaims() async throws {
        let cluster = try Cluster()
        let ids = ["task_slash", "task_dots", "task_huge", "task_empty"]
        var routes: [JSONValue.Member] = [
            .init("POST /v1/runners/host-a/claim", .array([
                Self.claimed("task_slash", command: ["sh", "-c", "touch ran"], workspace: "a/b"),
                Self.claimed("task_dots", command: ["sh", "-c", "touch ran"], workspace: ".."),
                Self.claimed("task_huge", command: ["true"], timeout: Int.max, attempt: Int.max, lease: Int.max),
                Self.claimed("task_empty", command: [], lease: -5),
                .object(["status": .int(204), "delay": .int(1)]),
            ])),
            .init("POST /v1/runners/host-a/heartbeat", .array([.object(["status": .int(200), "body": .object(["cancel": .array([]), "lease_s": .int(Int64.max)])])])),
        ]
        for id in ids { routes.append(.init("POST /v1/tasks/\(id)/status", Self.applied(id))) }
        let hostile = try await HostileServer(routes: .object(routes), in: cluster.directory)
        let runner = try ChildProcess(
            ["runner", "--server", hostile.url, "--name", "host-a", "--concurrency", "1", "--work-dir", "work", "--kill-grace", "1s"],
            in: cluster.directory, name: "runner")

        func reports(_ id: String) -> [JSONValue] {
            hostile.requests.filter { $0["path"] == .string("/v1/tasks/\(id)/status") }.compactMap {
                guard case .string(let body) = $0["body"] ?? .null else { return nil }
                return try? JSONValue.parse(Data(body.utf8))
            }
        }
        func terminal(_ id: String) -> JSONValue? { reports(id).first { $0["status"] != .string("running") } }
        #expect(await eventually(within: .seconds(20)) { ids.allSatisfy { terminal($0) != nil } }, "\(runner.output)")

        for id in ["task_slash", "task_dots", "task_empty"] {
            #expect(terminal(id)?["status"] == .string("failed"), "\(id)")
            #expect(terminal(id)?["error"]?["code"] == .string("launch_failed"), "\(id)")
            #expect(!reports(id).contains { $0["status"] == .string("running") }, "\(id) was started")
        }
        #expect(terminal("task_huge")?["status"] == .string("succeeded"))
        let work = cluster.directory.appendingPathComponent("work")
        #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent("workspaces/a").path))
        #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent("ran").path))
        #expect(!FileManager.default.fileExists(atPath: cluster.directory.appendingPathComponent("ran").path))
        #expect(runner.isRunning, "the runner died: \(runner.output)")
    }

    @Test("a server's error message with a newline cannot forge a runner log line")
    func logLinesEscaped() async throws {
        let cluster = try Cluster()
        let forged = "boom\n2099-01-01T00:00:00+0000 critical runwarden.runner : FORGED\u{1B}[2J"
        let hostile = try await HostileServer(
            routes: .object([
                .init("POST /v1/runners/host-a/claim", .array([
                    .object(["status": .int(500), "body": .object(["error": .object(["code": .string("internal"), "message": .string(forged)])])]),
                    .object(["status": .int(204), "delay": .int(1)]),
                ]))
            ]), in: cluster.directory)
        let runner = try ChildProcess(
            ["runner", "--server", hostile.url, "--name", "host-a", "--work-dir", "work", "--log-format", "text"],
            in: cluster.directory, name: "runner")
        #expect(await eventually(within: .seconds(10)) { runner.output.contains("claim failed") })
        let lines = runner.output.split(separator: "\n")
        #expect(!lines.contains { $0.hasPrefix("2099") }, "\(runner.output)")
        #expect(!runner.output.contains("\u{1B}"))
        #expect(runner.output.contains(#"boom\n2099"#))
    }

    @Test("status, wait and status --json escape control characters from the server and survive Int64.max counts")
    func cliEscapesHostileSnapshot() async throws {
        let cluster = try Cluster()
        let huge = Int64.max
        // Raw JSON text: ESC and BEL as JSON escapes, CSI (U+009B) and an RTL override raw — both valid JSON.
        let snapshot = """
            {"id": "run_evil", "workflow": "evil\\u001b]0;pwned\\u0007", "status": "failed", "version": 3, "run_attempt": 1,
             "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
             "error": {"code": "task_failed", "message": "bad \\u001b[2J\u{9B}31m news\u{202E}txt.exe", "retryable": false},
             "links": {"self": "/v1/runs/run_evil", "events": "/v1/runs/run_evil/events", "stream": "/v1/runs/run_evil/stream",
               "cancel": "/v1/runs/run_evil/cancel"},
             "progress": {"total": \(huge), "pending": \(huge), "queued": \(huge), "dispatched": \(huge), "running": \(huge),
               "canceling": \(huge), "succeeded": \(huge), "failed": \(huge), "canceled": \(huge), "timed_out": \(huge),
               "skipped": \(huge), "percent": \(huge)},
             "tasks": [{"id": "task_1", "name": "t\\u001b[31m", "status": "failed", "attempt": \(huge), "exit_code": \(huge),
               "error": {"code": "exit_code", "message": "x\\u001b]8;;http://evil\\u0007", "retryable": false}}]}
            """
        let hostile = try await HostileServer(
            routes: .object([.init("GET /v1/runs/run_evil", .array([.object(["status": .int(200), "raw": .string(snapshot)])]))]),
            in: cluster.directory)
        func checkEscaped(_ output: String, _ command: String) {
            #expect(!output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B || $0.value == 0x202E },
                "\(command) printed a control character: \(output.debugDescription)")
        }
        let status = try ChildProcess(["status", "run_evil", "--server", hostile.url], in: cluster.directory, name: "status")
        #expect(await status.waitForExit() == 0, "\(status.output)")
        checkEscaped(status.output, "status")
        #expect(status.output.contains(#"evil\x1b]0;pwned\x07"#))
        #expect(status.output.contains(#"\x9b31m"#))

        let wait = try ChildProcess(["wait", "run_evil", "--server", hostile.url], in: cluster.directory, name: "wait")
        #expect(await wait.waitForExit() == 1, "\(wait.output)")
        checkEscaped(wait.output, "wait")
        #expect(wait.output.contains(#"bad \x1b[2J"#))

        let json = try ChildProcess(["status", "run_evil", "--json", "--server", hostile.url], in: cluster.directory, name: "json")
        #expect(await json.waitForExit() == 0)
        checkEscaped(json.output, "status --json")
        // Still JSON, and the same strings to a JSON reader.
        let parsed = try JSONValue.parse(Data(json.output.utf8))
        #expect(parsed["error"]?["message"] == .string("bad \u{1B}[2J\u{9B}31m news\u{202E}txt.exe"))
    }

    @Test("a task's stderr with escape sequences reaches status, wait and events escaped (real server and runner)")
    func cliEscapesRealTaskError() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(
            #"{"workflow": "esc", "tasks": [{"name": "noisy", "command": "printf 'bad \\033]0;pwned\\007 news\\n' >&2; exit 1"}]}"#)
        let run = try await cluster.waitForEnd(runID)
        #expect(run.status == .failed)
        #expect(run.tasks?.first?.error?.message.contains("\u{1B}]0;pwned") == true, "the server no longer keeps the raw text; pick another carrier")
        for (name, arguments, code) in [("status", ["status", runID], Int32(0)), ("wait", ["wait", runID], 1), ("events", ["events", runID], 0)] {
            let command = try ChildProcess(arguments + ["--server", cluster.url], in: cluster.directory, name: name)
            #expect(await command.waitForExit() == code, "\(name): \(command.output)")
            #expect(!command.output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(name): \(command.output.debugDescription)")
        }
        let wait = try ChildProcess(["wait", runID, "--server", cluster.url], in: cluster.directory, name: "wait-again")
        _ = await wait.waitForExit()
        #expect(wait.output.contains(#"\x1b]0;pwned\x07"#))
    }
}
