import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

// Helpers of the fault-injection suites: a mixed batch of runs and the checks every run of it
// must pass (SPEC §1 lifecycle, §2 events), helper processes (python3 for SQLite locks,
// mount), and raw requests that report the error envelope instead of throwing it.

// MARK: - Randomness

/// `RUNWARDEN_FAULT_SEED` to replay, else fresh.
func faultSeed() -> UInt64 { SeededRandom.seed(from: "RUNWARDEN_FAULT_SEED") }

// MARK: - A mixed batch of runs

/// One run of a batch and what it must end as.
struct FaultRunPlan: Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case succeeds, fails, chainSucceeds, chainFirstFails, chainSecondFails
    }

    var index: Int
    var kind: Kind
    var body: JSONValue
    var runStatus: String
    /// Task name → status and exit code it must end with (nil exit code: never ran).
    var tasks: [String: (status: String, exitCode: Int?)]
}

enum FaultBatch {
    /// `count` runs: 6 in 10 one task that succeeds, 1 in 10 one task that exits with a code,
    /// 3 in 10 a two-task `needs` chain (succeeding, first failing, second failing). Each task
    /// sleeps 0.05–0.3 s; every command carries `marker` so leftovers can be looked for.
    static func plan(count: Int, marker: String, retries: Int = 0, random: inout SeededRandom) -> [FaultRunPlan] {
        let kinds: [FaultRunPlan.Kind] = [.succeeds, .succeeds, .succeeds, .succeeds, .succeeds, .succeeds, .fails, .chainSucceeds, .chainFirstFails, .chainSecondFails]
        var plans: [FaultRunPlan] = []
        for index in 0..<count {
            let kind = kinds[index % kinds.count]
            let exitCode = Int.random(in: 2...9, using: &random)
            func command(failing: Bool) -> JSONValue {
                let sleep = String(format: "%.2f", Double.random(in: 0.05...0.3, using: &random))
                return .string(": \(marker); sleep \(sleep)" + (failing ? "; exit \(exitCode)" : ""))
            }
            func task(_ name: String, failing: Bool, needs: [String] = []) -> JSONValue {
                .object([
                    "name": .string(name), "command": command(failing: failing), "needs": JSONValue(strings: needs),
                    "retries": .int(Int64(retries)),
                ])
            }
            let taskList: [JSONValue]
            let runStatus: String
            var expected: [String: (status: String, exitCode: Int?)] = [:]
            switch kind {
            case .succeeds:
                taskList = [task("only", failing: false)]
                runStatus = "succeeded"
                expected = ["only": ("succeeded", 0)]
            case .fails:
                taskList = [task("only", failing: true)]
                runStatus = "failed"
                expected = ["only": ("failed", exitCode)]
            case .chainSucceeds:
                taskList = [task("first", failing: false), task("second", failing: false, needs: ["first"])]
                runStatus = "succeeded"
                expected = ["first": ("succeeded", 0), "second": ("succeeded", 0)]
            case .chainFirstFails:
                taskList = [task("first", failing: true), task("second", failing: false, needs: ["first"])]
                runStatus = "failed"
                expected = ["first": ("failed", exitCode), "second": ("skipped", nil)]
            case .chainSecondFails:
                taskList = [task("first", failing: false), task("second", failing: true, needs: ["first"])]
                runStatus = "failed"
                expected = ["first": ("succeeded", 0), "second": ("failed", exitCode)]
            }
            let body: JSONValue = .object([
                "workflow": .string("\(marker)-\(index)-\(kind.rawValue)"), "tasks": .array(taskList),
                "metadata": .object(["index": .int(Int64(index))]),
            ])
            plans.append(FaultRunPlan(index: index, kind: kind, body: body, runStatus: runStatus, tasks: expected))
        }
        plans.shuffle(using: &random)
        return plans
    }

    /// Polls every run until all are terminal or `limit` passes (the server may be restarting:
    /// transient errors are waited out). Returns the last snapshot of each run.
    static func waitForAll(_ runIDs: [String], client: RunwardenClient, within limit: Duration) async -> [String: RunSnapshot] {
        let deadline = ContinuousClock.now + limit
        var latest: [String: RunSnapshot] = [:]
        while ContinuousClock.now < deadline {
            for id in runIDs where latest[id]?.isTerminal != true {
                if let run = try? await client.run(id) { latest[id] = run }
            }
            if runIDs.allSatisfy({ latest[$0]?.isTerminal == true }) { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return latest
    }

    /// Every rule one run of the batch breaks; none when it ended right with a clean timeline.
    /// No task may be retried: a lost lease or a claim answered to nobody both show as one.
    static func check(_ plan: FaultRunPlan, run: RunSnapshot?, events: [RunEvent], runner: String) -> [String] {
        guard let run else { return ["never read back"] }
        var problems: [String] = []
        func problem(_ text: String) { problems.append(text) }
        if run.status.rawValue != plan.runStatus { problem("run ended \(run.status), expected \(plan.runStatus)") }
        if plan.runStatus == "failed", run.error?.code != "task_failed" {
            problem("failed run's error.code is \(run.error?.code ?? "nil"), expected task_failed")
        }
        if plan.runStatus == "succeeded", let error = run.error { problem("succeeded run has an error: \(error.code)") }

        // The timeline: run_seq 1, 2, 3 … without gaps, seq strictly increasing.
        let ordered = events.sorted { $0.seq < $1.seq }
        if ordered.isEmpty || ordered.map(\.runSeq) != Array(1...ordered.count) {
            problem("run_seq is not contiguous from 1: \(ordered.map(\.runSeq))")
        }
        if Set(ordered.map(\.seq)).count != ordered.count { problem("repeated seq: \(ordered.map(\.seq))") }

        // No duplicate event: one (type, task, attempt) at most once.
        var seen: [String: Int] = [:]
        for event in ordered { seen["\(event.type) \(event.taskID ?? "run") #\(event.attempt ?? 0)", default: 0] += 1 }
        for (key, count) in seen.sorted(by: { $0.key < $1.key }) where count > 1 { problem("event \(key) appears \(count) times") }

        // Run events: created, running, then the terminal one — nothing else.
        let runTypes = ordered.filter { $0.taskID == nil }.map(\.type)
        let expectedRunTypes = ["run.created", "run.running", "run.\(plan.runStatus)"]
        if runTypes != expectedRunTypes { problem("run events \(runTypes), expected \(expectedRunTypes)") }
        if ordered.last?.type != "run.\(plan.runStatus)" { problem("the last event is \(ordered.last?.type ?? "none"), not the run's terminal one") }

        let tasks = run.tasks ?? []
        if tasks.count != plan.tasks.count { problem("has \(tasks.count) tasks, expected \(plan.tasks.count)") }
        for task in tasks {
            guard let expected = plan.tasks[task.name] else {
                problem("unexpected task \(task.name)")
                continue
            }
            let own = ordered.filter { $0.taskID == task.id && $0.type != "task.queued" }
            if ordered.contains(where: { $0.taskID == task.id && $0.type == "task.queued" }), task.name != "second" {
                problem("task \(task.name) has a task.queued event, though it never waited on needs")
            }
            if own.contains(where: { $0.type == "task.retrying" }) {
                problem("task \(task.name) was retried (a lease ran out): \(own.map(\.type))")
            }
            let finalAttempt = 1

            if task.status.rawValue != expected.status { problem("task \(task.name) ended \(task.status), expected \(expected.status)") }
            if task.exitCode != expected.exitCode {
                problem("task \(task.name) exit_code \(task.exitCode.map(String.init) ?? "nil"), expected \(expected.exitCode.map(String.init) ?? "nil")")
            }
            if expected.status != "skipped", task.attempt != finalAttempt { problem("task \(task.name) is at attempt \(task.attempt), expected \(finalAttempt)") }
            if expected.status == "failed", task.error?.code != "exit_code" {
                problem("task \(task.name) error \(task.error?.code ?? "nil"): \(task.error?.message ?? ""), expected exit_code")
            }
            if expected.status != "skipped" {
                if task.runner != runner { problem("task \(task.name) ran on \(task.runner ?? "nil")") }
                if task.startedAt == nil || task.finishedAt == nil { problem("task \(task.name) lacks started_at/finished_at") }
            }

            // No report lost: the attempt that ran has dispatched → running → its terminal event,
            // each exactly once, in that order; a skipped task only task.skipped.
            let required =
                expected.status == "skipped" ? ["task.skipped"] : ["task.dispatched", "task.running", "task.\(expected.status)"]
            if own.map(\.type) != required { problem("task \(task.name) events \(own.map(\.type)) (attempt \(finalAttempt)), expected \(required)") }
            if expected.status != "skipped", own.contains(where: { $0.attempt != finalAttempt }) {
                problem("task \(task.name) attempt-\(finalAttempt) events carry attempts \(own.map { $0.attempt ?? 0 })")
            }
            if let terminal = own.last, terminal.status != expected.status { problem("task \(task.name) terminal event says \(terminal.status)") }
        }
        return problems
    }
}

extension Cluster {
    /// Submits each plan's body; the run ids in plan order.
    func submit(_ plans: [FaultRunPlan]) async throws -> [String] {
        var ids: [String] = []
        for plan in plans { ids.append(try await client.createRun(plan.body).id) }
        return ids
    }

    /// The whole timeline of a run (the batch's runs have a handful of events each).
    func timeline(_ runID: String) async throws -> [RunEvent] {
        try await client.events(runID: runID, limit: 500).events
    }

    /// Checks every run of a batch, recording one issue per broken run; returns how many broke.
    func expectBatchEndedRight(
        _ plans: [FaultRunPlan], ids: [String], runner: String = "host-a", within limit: Duration
    ) async throws -> Int {
        let snapshots = await FaultBatch.waitForAll(ids, client: client, within: limit)
        var broken = 0
        for (plan, id) in zip(plans, ids) {
            let events = try await timeline(id)
            let problems = FaultBatch.check(plan, run: snapshots[id], events: events, runner: runner)
            if !problems.isEmpty {
                broken += 1
                let timeline = events.map { "\($0.runSeq ?? 0):\($0.type)#\($0.attempt ?? 0)\($0.error.map { " (\($0.code): \($0.message.prefix(80)))" } ?? "")" }
                Issue.record("run \(id) (\(plan.kind.rawValue)): \(problems.joined(separator: "; ")) — timeline \(timeline)")
            }
        }
        return broken
    }

    /// Report files the runner has not delivered yet (its durable spool).
    func spooledReports(runner: String = "host-a") -> [String] {
        let spool = directory.appendingPathComponent("work-\(runner)/spool")
        return ((try? FileManager.default.contentsOfDirectory(atPath: spool.path)) ?? []).filter { $0.hasSuffix(".json") }
    }

    /// Waits (bounded) for the runner's spool to be empty; the files left.
    func waitForEmptySpool(runner: String = "host-a", within limit: Duration = .seconds(10)) async -> [String] {
        let deadline = ContinuousClock.now + limit
        var left = spooledReports(runner: runner)
        while !left.isEmpty, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
            left = spooledReports(runner: runner)
        }
        return left
    }

    /// Every server log of this cluster, concatenated (one file per server start).
    var serverLogs: String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("server-") }.sorted()
        return names.map { (try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) ?? "" }.joined(separator: "\n")
    }
}

// MARK: - Raw requests

/// An answer as status and body; an error answer is not thrown.
struct FaultAnswer: Sendable {
    var status: Int
    /// `error.code` of the envelope, for errors.
    var code: String?
    var body: Data

    var json: JSONValue? { try? JSONValue.parse(body) }
}

extension Cluster {
    func request(_ method: String, _ path: String, body: JSONValue? = nil, timeout: Duration = .seconds(30)) async throws -> FaultAnswer {
        do {
            let answer = try await client.send(.init(rawValue: method), path, body: body, timeout: timeout)
            return FaultAnswer(status: answer.status, code: nil, body: answer.body)
        } catch ClientError.server(let status, let envelope) {
            return FaultAnswer(status: status, code: envelope.code.rawValue, body: Data(envelope.message.utf8))
        }
    }
}

struct FaultSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Helper processes (ChildProcess, from RunwardenTestSupport)

let faultPython = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/python3"

/// `PRAGMA integrity_check` of a SQLite file, from another process (python3's sqlite3).
func faultIntegrityCheck(_ databasePath: String) async throws -> String {
    let script = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=30); print(c.execute('PRAGMA integrity_check').fetchone()[0])"
    let result = try await ChildProcess.run(faultPython, ["-c", script, databasePath])
    return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
}

// MARK: - Reading JSON

extension JSONValue {
    var faultString: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var faultInt: Int? {
        if case .int(let value) = self { return Int(value) }
        return nil
    }

    var faultArray: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }
}

// MARK: - A tiny filesystem

enum FaultMount {
    /// Whether this process may mount a tmpfs (it must be root, and the kernel must let it):
    /// probed once by mounting and unmounting one.
    static let canMountTmpfs: Bool = {
        guard geteuid() == 0 else { return false }
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("runwarden-mount-probe-\(UUID().uuidString)")
        guard (try? FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)) != nil else { return false }
        defer { try? FileManager.default.removeItem(at: probe) }
        guard (try? ChildProcess.runBlocking("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path]))?.status == 0 else {
            return false
        }
        _ = try? ChildProcess.runBlocking("/bin/umount", [probe.path])
        return true
    }()

    /// Fills the filesystem holding `directory` with one file until a write fails (ENOSPC);
    /// bounded in writes. Returns the file and the bytes written.
    static func fill(_ directory: URL) -> (URL, Int) {
        let filler = directory.appendingPathComponent("filler")
        let descriptor = open(filler.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { return (filler, 0) }
        defer { close(descriptor) }
        var written = 0
        for chunkSize in [1 << 16, 1 << 12, 1 << 9, 1] {
            let chunk = [UInt8](repeating: 0xAB, count: chunkSize)
            for _ in 0..<4096 {
                let count = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress, chunkSize) }
                if count <= 0 { break }
                written += count
            }
        }
        _ = fsync(descriptor)
        return (filler, written)
    }

    /// Free bytes on the filesystem holding `path`.
    static func freeBytes(_ path: String) -> Int {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return -1 }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }
}
