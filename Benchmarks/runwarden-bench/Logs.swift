import Foundation
import NIOHTTP1
import RunwardenCore

/// logs (issue 17, SPEC §9): a real `runwarden runner` ships task output to a fresh server.
///
/// - loud: one task printing `megabytes` MB as fast as it can (`yes | head -c`), then its own
///   clock (`date +%s%N`) as the last line. Server and runner CPU seconds per MB shipped (from
///   /proc, submit to `Log-Complete: true`); time from that last line to a long-poll seeing
///   `Log-Complete: true`; how long the task itself took under the runner against the same
///   command writing to /dev/null here.
/// - chatty: `tasks` tasks printing their clock once a second for `seconds` s; one follower per
///   task long-polls its log, and each line's write-to-visible time is when the follower got it
///   minus the clock in the line (same machine).
enum LogsWorkload {
    static func run(binary: String, directory: String, megabytes: Int, tasks: Int, seconds: Int) async throws -> JSONValue {
        let server = try await ServerProcess(
            binary: binary, database: directory + "/logs.sqlite", directory: directory, name: "server-logs", lease: "30s")
        defer { server.stop() }
        let runner = try Child(
            executable: binary,
            arguments: [
                "runner", "--server", server.base, "--name", "bench-logs", "--concurrency", String(max(tasks, 1)),
                "--work-dir", directory + "/logs-work", "--log-level", "warning",
            ],
            logPath: directory + "/runner-logs.log")
        defer { runner.stop() }
        let http = BenchClient.make(connections: tasks + 8)
        let client = BenchClient(http: http, base: server.base)
        say("logs server pid \(server.pid) on \(server.base), runner pid \(runner.pid)")

        let loud = try await loudTask(client, server: server.pid, runner: runner.pid, megabytes: megabytes)
        let chatty = try await chattyTasks(client, tasks: tasks, seconds: seconds)
        try? await http.shutdown()
        return .object([.init("loud", loud), .init("chatty", chatty)])
    }

    static func nowNs() -> Double { Date().timeIntervalSince1970 * 1e9 }

    static func submit(_ client: BenchClient, _ tasks: [(name: String, script: String)]) async throws -> [String] {
        let items = tasks.map { #"{"name": "\#($0.name)", "command": ["sh", "-c", \#(String(decoding: JSONValue.string($0.script).encoded(), as: UTF8.self))]}"# }
        let runID = try await client.setup(.POST, "/v1/runs", body: #"{"workflow": "logs", "tasks": [\#(items.joined(separator: ","))]}"#)
            .decode(Created.self).id
        let snapshot = try JSONValue.parse(Data(try await client.setup(.GET, "/v1/runs/\(runID)").body.readableBytesView))
        guard case .array(let items)? = snapshot["tasks"] else { return [] }
        return items.compactMap { text($0["id"]) }
    }

    /// Long-polls the task's log from `offset` until it is complete; calls `got` with each text
    /// and when it arrived. Bounded by `limit`.
    static func follow(
        _ client: BenchClient, taskID: String, from offset: Int64 = 0, limit: Duration,
        _ got: (String, Double) -> Void = { _, _ in }
    ) async throws -> Bool {
        var offset = offset
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let answer = try await client.send(.GET, "/v1/tasks/\(taskID)/logs?offset=\(offset)&wait=10", timeout: .seconds(30))
            let text = answer.text
            if !text.isEmpty { got(text, nowNs()) }
            offset = Int64(answer.headers.first(name: "Log-Next-Offset") ?? "") ?? offset
            if answer.headers.first(name: "Log-Complete") == "true" { return true }
        }
        return false
    }

    static func loudTask(_ client: BenchClient, server: Int32, runner: Int32, megabytes: Int) async throws -> JSONValue {
        let bytes = megabytes * 1_000_000
        let printing = "yes 'runwarden bench: a log line of sixty-four bytes, printed fast.....' | head -c \(bytes)"
        // The same output to /dev/null, here: what the task costs without a runner around it.
        let alone = ContinuousClock.now
        let baseline = Process()
        baseline.executableURL = URL(fileURLWithPath: "/bin/sh")
        baseline.arguments = ["-c", printing + " > /dev/null"]
        try baseline.run()
        baseline.waitUntilExit()
        let aloneMs = elapsedMs(since: alone)

        let before = (server: ProcFS.cpuTicks(server) ?? 0, runner: ProcFS.cpuTicks(runner) ?? 0)
        guard let taskID = try await submit(client, [("loud", printing + "; date +%s%N")]).first else {
            throw BenchError("the loud run has no task")
        }
        // Past the end: the long-poll answers once the log is complete, reading nothing on the way.
        let complete = try await follow(client, taskID: taskID, from: 1 << 50, limit: .seconds(300))
        let completeNs = nowNs()
        let after = (server: ProcFS.cpuTicks(server) ?? 0, runner: ProcFS.cpuTicks(runner) ?? 0)
        let lastLine = try await client.send(.GET, "/v1/tasks/\(taskID)/logs?offset=\(bytes)").text
        let lastByteNs = Double(lastLine.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan
        let task = try JSONValue.parse(Data(try await client.send(.GET, "/v1/tasks/\(taskID)").body.readableBytesView))
        let taskMs = durationMs(text(task["started_at"]), text(task["finished_at"]))
        let megabytesShipped = Double(bytes) / 1_000_000
        let serverCPU = Double(after.server - before.server) / ProcFS.ticksPerSecond
        let runnerCPU = Double(after.runner - before.runner) / ProcFS.ticksPerSecond
        let lagMs = (completeNs - lastByteNs) / 1e6
        say(
            "logs loud: \(megabytes) MB; server \(fmt(serverCPU / megabytesShipped * 1000, 2)) ms CPU/MB, runner "
                + "\(fmt(runnerCPU / megabytesShipped * 1000, 2)) ms CPU/MB; last byte → Log-Complete \(fmt(lagMs)) ms; "
                + "task \(fmt(taskMs)) ms under the runner vs \(fmt(aloneMs)) ms to /dev/null")
        return .object([
            .init("megabytes", .int(Int64(megabytes))), .init("complete", .bool(complete)),
            .init("server_cpu_ms_per_mb", number(serverCPU / megabytesShipped * 1000)),
            .init("runner_cpu_ms_per_mb", number(runnerCPU / megabytesShipped * 1000)),
            .init("last_byte_to_complete_ms", number(lagMs)),
            .init("task_ms_under_runner", number(taskMs)), .init("task_ms_to_dev_null", number(aloneMs)),
        ])
    }

    static func chattyTasks(_ client: BenchClient, tasks: Int, seconds: Int) async throws -> JSONValue {
        let script = "for i in $(seq 1 \(seconds)); do date +%s%N; sleep 1; done"
        let taskIDs = try await submit(client, (0..<tasks).map { ("t\($0)", script) })
        let latencies = Locked<[Double]>([])
        let completed = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for taskID in taskIDs {
                group.addTask {
                    var pending = ""
                    let done = try await follow(client, taskID: taskID, limit: .seconds(Double(seconds) + 120)) { text, at in
                        pending += text
                        while let newline = pending.firstIndex(of: "\n") {
                            if let written = Double(pending[..<newline]) { latencies.withLock { $0.append((at - written) / 1e6) } }
                            pending.removeSubrange(...newline)
                        }
                    }
                    if done { completed.add() }
                }
            }
            try await group.waitForAll()
        }
        let sorted = latencies.withLock { $0 }.sorted()
        say(
            "logs chatty: \(tasks) tasks × \(seconds) lines; write-to-visible p50 \(fmt(percentile(sorted, 50))) ms, "
                + "p99 \(fmt(percentile(sorted, 99))) ms, max \(fmt(sorted.last)) ms over \(sorted.count) lines")
        return .object([
            .init("tasks", .int(Int64(tasks))), .init("lines", .int(Int64(sorted.count))),
            .init("complete", .int(Int64(completed.value))), .init("write_to_visible_ms", latencySummary(sorted)),
        ])
    }

    static func text(_ value: JSONValue?) -> String? {
        if case .string(let text)? = value { return text }
        return nil
    }

    static func durationMs(_ start: String?, _ end: String?) -> Double? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let start = start.flatMap(formatter.date(from:)), let end = end.flatMap(formatter.date(from:)) else { return nil }
        return end.timeIntervalSince(start) * 1000
    }
}
