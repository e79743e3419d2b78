import Foundation
import RunwardenCore

/// Checks that acknowledged changes are synced to disk: `strace` counts the server's fsync and
/// fdatasync calls while the bench makes `commits` changes one after another. With SQLite in
/// WAL mode and `synchronous = FULL` every commit syncs the WAL, so there must be at least as
/// many sync calls as commits; far fewer means changes are acknowledged before they are durable.
enum DurabilityProbe {
    static func run(_ client: BenchClient, server: ServerProcess, directory: String, commits: Int = 50) async throws -> JSONValue {
        guard server.sqlitePath != nil else { return .object(["checked": .bool(false), "reason": .string("not SQLite")]) }
        guard let strace = ["/usr/bin/strace", "/bin/strace"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return .object(["checked": .bool(false), "reason": .string("strace is not installed")])
        }
        let output = directory + "/durability.strace"
        let tracer = try Child(
            executable: strace, arguments: ["-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range,msync", "-o", output, "-p", String(server.pid)],
            logPath: directory + "/durability.strace.log")
        try await Task.sleep(for: .seconds(1))  // attached to every thread
        var ok = 0
        for _ in 0..<commits {
            let answer = try await client.send(.POST, "/v1/runs", body: Bodies.oneTaskRun)
            if answer.status == 202 { ok += 1 }
        }
        try await Task.sleep(for: .milliseconds(500))
        tracer.signalAndWait(SIGINT, timeout: 10)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let syncs = text.split(separator: "\n").filter { $0.contains("fsync(") || $0.contains("fdatasync(") || $0.contains("sync_file_range(") || $0.contains("msync(") }.count
        let durable = syncs >= ok
        say("durability: \(syncs) fsync/fdatasync calls for \(ok) acknowledged creates (one at a time) — \(durable ? "each commit synced" : "commits are NOT synced before they are acknowledged")")
        return .object([
            "checked": .bool(true), "commits": .int(Int64(ok)), "sync_calls": .int(Int64(syncs)), "synced_per_commit": .bool(durable),
            "method": .string("strace -f -e trace=fsync,fdatasync,sync_file_range,msync on the server during \(ok) sequential POST /v1/runs"),
        ])
    }
}
