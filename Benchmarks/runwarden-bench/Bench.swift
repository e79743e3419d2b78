import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunwardenCore

@main
struct RunwardenBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runwarden-bench",
        abstract: "Benchmark a release-built Runwarden server over real HTTP on loopback (BENCHMARKS.md).",
        subcommands: [RunCommand.self, Compare.self, EncodeCommand.self],
        defaultSubcommand: RunCommand.self)
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start servers, run the workloads, print a table and write JSON.",
        discussion: """
            Workloads: lifecycle (1-task run: create, claim, running, succeeded, GET) and read (GET /v1/runs/{id} \
            and GET /healthz) at each --levels concurrency; fanout (one 1,000-task run, needs chains, shared \
            workspaces, 8 runner loops); webhooks (deliveries/s and commit-to-receipt to a local receiver); \
            wake (idle long-poll waiters, one change at a time); memory (RSS idle, after --memory-runs finished \
            runs, database size per 100k runs). Each level is bounded by --duration AND an iteration count. \
            Not in the default list (they take minutes): width (W tasks as one run and as W one-task runs, \
            drained by --width-runners loops, fresh servers, also on --postgres) and backlog (lifecycles/s at \
            c=16 before and after B queued tasks no runner can take).
            """)

    @Option(help: "The runwarden executable (default: next to this one).") var serverBinary: String?
    @Option(help: "Where results go.") var out = "Benchmarks/results/runwarden.json"
    @Option(help: "Workloads, comma-separated: lifecycle,read,create,fanout,webhooks,wake,memory; also width,backlog,retention,logs (long, not in the default).")
    var workloads = "lifecycle,read,create,fanout,webhooks,wake,memory"
    @Option(help: "Concurrency levels of lifecycle and read.") var levels = "1,8,32"
    @Option(help: "Seconds per level.") var duration: Double = 10
    @Option(help: "Lifecycle iterations per level at most.") var maxIterations = 50_000
    @Option(help: "Read iterations per level at most.") var maxReads = 500_000
    @Option(help: "Parked waiter counts of the wake workload.") var wake = "1000,10000"
    @Option(help: "Runs changed one at a time per wake count (spread over the waiters).") var wakeChanges = 2000
    @Option(help: "Finished runs for the memory workload.") var memoryRuns = 100_000
    @Option(help: "Seconds the memory workload may take at most (then it reports what it reached).") var memoryMaxSeconds: Double = 300
    @Flag(help: "Shorter: memory workload of 10,000 runs (database size extrapolated per 100k), 5 s levels.") var quick = false
    @Option(help: "Lifecycle runs of the webhook burst.") var webhookRuns = 400
    @Option(help: "Seconds the fan-out run may take at most (then it reports how far it got).") var fanoutMaxSeconds = 240
    @Option(help: "width: tasks per phase (one run of W tasks, then W one-task runs), comma-separated.") var widthTasks = "1000,10000"
    @Option(help: "width: runner loops draining each phase.") var widthRunners = 16
    @Option(help: "width: seconds each phase may take at most (then it reports how far it got).") var widthMaxSeconds: Double = 300
    @Option(help: "backlog: unclaimable queued tasks, comma-separated (a fresh server each).") var backlogTasks = "5000,50000"
    @Option(help: "backlog: tasks per run of the backlog.") var backlogRunSize = 1000
    @Option(help: "retention: the server's --retention, in seconds.") var retentionSeconds = 20
    @Option(help: "retention: how many retention periods of steady load.") var retentionPeriods = 3
    @Option(help: "logs: megabytes one task prints as fast as it can.") var logsMegabytes = 50
    @Option(help: "logs: tasks printing one line a second each.") var logsTasks = 100
    @Option(help: "logs: seconds those tasks print for.") var logsSeconds = 30
    @Option(help: "PostgreSQL URL: also run lifecycle, read, fanout and width against servers on it.") var postgres: String?
    @Option(help: "Write perf profiles (perf record -g) of the c=32 lifecycle and read levels into this directory.") var profile: String?
    @Option(help: "Directory for the databases and server logs (default: a new one under the temporary directory).") var workDir: String?
    @Flag(help: "Keep the work directory.") var keep = false
    @Option(help: "A label for the results (e.g. the git commit).") var label: String?
    @Option(help: "Pause between levels, seconds.") var settle: Double = 2

    func run() async throws {
        Children.installSignalHandlers()
        let binary = try locateServer()
        let directory = workDir ?? (NSTemporaryDirectory() + "runwarden-bench-\(getpid())")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let profile { try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true) }
        defer { if !keep, workDir == nil { try? FileManager.default.removeItem(atPath: directory) } }
        do {
            try await measure(binary: binary, directory: directory)
        } catch {
            Children.killAll()
            throw error
        }
    }

    /// Starts a server, hands a client of it to `body`, then closes the client's connections and
    /// stops the server (also when `body` throws).
    func withServer<T>(
        _ binary: String, _ directory: String, name: String, database: String? = nil, lease: String = "30s",
        _ body: (ServerProcess, BenchClient) async throws -> T
    ) async throws -> T {
        let server = try await ServerProcess(
            binary: binary, database: database ?? directory + "/\(name).sqlite", directory: directory, name: "server-\(name)", lease: lease)
        let http = BenchClient.make(connections: 12_000)
        do {
            let value = try await body(server, BenchClient(http: http, base: server.base))
            try? await http.shutdown()
            server.stop()
            return value
        } catch {
            try? await http.shutdown()
            server.stop()
            throw error
        }
    }

    func measure(binary: String, directory: String) async throws {
        let selected = Set(workloads.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let levels = self.levels.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let levelDuration: Duration = .milliseconds(Int64((quick ? min(duration, 5) : duration) * 1000))
        let memoryRuns = quick ? min(self.memoryRuns, 10_000) : self.memoryRuns
        let started = ISO8601DateFormatter().string(from: Date())
        let loadBefore = ProcFS.loadAverage()
        if let load = loadBefore.first, load > 0.5 * Double(ProcessInfo.processInfo.activeProcessorCount) {
            log("warning: 1-min load average is \(load) on \(ProcessInfo.processInfo.activeProcessorCount) CPUs before the load starts; other work on this machine will skew the figures")
        }
        let t0 = ContinuousClock.now
        var results: [JSONValue.Member] = []
        var top: [JSONValue.Member] = []
        say("runwarden-bench: server \(binary); work dir \(directory)")

        // ---- the main server: lifecycle, read, fan-out, webhooks ------------------------------
        if !selected.intersection(["lifecycle", "read", "create", "fanout", "webhooks"]).isEmpty {
            try await withServer(binary, directory, name: "main") { server, client in
                try await Task.sleep(for: .seconds(2))
                let rssIdle = server.rssMiB
                say("main server pid \(server.pid) on \(server.base): RSS idle \(fmt(rssIdle)) MiB")
                results.append(.init("durability", try await DurabilityProbe.run(client, server: server, directory: directory)))
                let sampler = RSSSampler(pid: server.pid)
                let sampling = Task { await sampler.run() }
                results += try await mainServer(
                    client, server: server, selected: selected, levels: levels, levelDuration: levelDuration, directory: directory)
                let peak = sampler.finish()
                sampling.cancel()
                top += [
                    .init("rss_mb_idle", number(rssIdle)), .init("rss_mb_peak", number(Double(peak) / 1024)),
                    .init("rss_mb_after", number(server.rssMiB)),
                    .init("database_mb_after", number(server.databaseBytes.map { Double($0) / 1_048_576 })),
                ]
            }
        }

        // ---- wake: a fresh server per count (a long lease: the claimed tasks must not be reaped) -
        if selected.contains("wake") {
            var wakeResults: [JSONValue.Member] = []
            for count in wake.split(separator: ",").compactMap({ Int($0) }) {
                let result = try await withServer(binary, directory, name: "wake-\(count)", lease: "2h") { server, client in
                    say("wake server pid \(server.pid) on \(server.base)")
                    return try await WakeWorkload.run(client, server: server, waiters: count, changes: wakeChanges)
                }
                wakeResults.append(.init(String(count), result))
            }
            results.append(.init("wake", .object(wakeResults)))
        }

        // ---- memory: a fresh server and database ----------------------------------------------
        if selected.contains("memory") {
            let memory = try await withServer(binary, directory, name: "memory") { server, client in
                try await MemoryWorkload.run(client, server: server, runs: memoryRuns, maxSeconds: memoryMaxSeconds)
            }
            results.append(.init("memory", memory))
        }

        // ---- width and backlog: fresh servers ---------------------------------------------------
        if selected.contains("width") {
            results.append(.init("width", try await width(binary, directory)))
        }
        if selected.contains("backlog") {
            var backlog: [JSONValue.Member] = []
            for count in backlogTasks.split(separator: ",").compactMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                let result = try await withServer(binary, directory, name: "backlog-\(count)") { server, client in
                    say("backlog server pid \(server.pid) on \(server.base)")
                    return try await BacklogWorkload.run(
                        client, server: server, backlog: count, runSize: backlogRunSize, duration: levelDuration, maxIterations: maxIterations,
                        settle: settle)
                }
                backlog.append(.init(String(count), result))
            }
            results.append(.init("backlog", .object(backlog)))
        }

        if selected.contains("logs") {
            results.append(
                .init(
                    "logs",
                    try await LogsWorkload.run(
                        binary: binary, directory: directory, megabytes: logsMegabytes, tasks: logsTasks, seconds: logsSeconds)))
        }

        if selected.contains("retention") {
            let server = try await ServerProcess(
                binary: binary, database: directory + "/retention.sqlite", directory: directory, name: "server-retention", lease: "30s",
                extra: ["--retention", "\(retentionSeconds)s"])
            let http = BenchClient.make(connections: 64)
            defer { server.stop() }
            say("retention server pid \(server.pid) on \(server.base): --retention \(retentionSeconds)s")
            let result = try await RetentionWorkload.run(
                BenchClient(http: http, base: server.base), server: server, retentionSeconds: retentionSeconds, periods: retentionPeriods)
            try? await http.shutdown()
            results.append(.init("retention", result))
        }

        // ---- PostgreSQL, when given -----------------------------------------------------------
        if let postgres {
            var sections: [JSONValue.Member] = try await withServer(binary, directory, name: "postgres", database: postgres) { server, client in
                try await Task.sleep(for: .seconds(2))
                let rssIdle = server.rssMiB
                say("postgres server pid \(server.pid) on \(server.base): RSS idle \(fmt(rssIdle)) MiB")
                var sections = try await mainServer(
                    client, server: server, selected: selected.intersection(["lifecycle", "read", "fanout"]), levels: levels,
                    levelDuration: levelDuration, directory: directory, profileSuffix: "-postgres")
                sections.append(.init("rss_mb_idle", number(rssIdle)))
                return sections
            }
            if selected.contains("width") {
                sections.append(.init("width", try await width(binary, directory, postgres: postgres)))
            }
            results.append(.init("postgres", .object(sections)))
        }

        let document: JSONValue = .object(
            [
                .init("system", .string("runwarden")),
                .init("version", .string(label ?? "unknown")),
                .init("workloads", .object(results)),
            ] + top + [
                .init("meta", machine(started: started, loadBefore: loadBefore, totalSeconds: (ContinuousClock.now - t0).seconds, levels: levels, levelDuration: levelDuration, memoryRuns: memoryRuns)),
            ])
        let outURL = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: outURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Atomically only onto a regular file: an atomic write renames over the path, which
        // turned `--out /dev/null` into a root-only regular file.
        let existingType = (try? FileManager.default.attributesOfItem(atPath: out))?[.type] as? FileAttributeType
        let isSpecialFile = existingType != nil && existingType != .typeRegular
        try (document.pretty() + "\n").write(to: outURL, atomically: !isSpecialFile, encoding: .utf8)
        say("")
        Table.print(document)
        say("\nwrote \(out)")
    }

    func locateServer() throws -> String {
        if let serverBinary {
            guard FileManager.default.isExecutableFile(atPath: serverBinary) else { throw BenchError("--server-binary \(serverBinary) is not executable") }
            return serverBinary
        }
        // This executable's own directory (the build products directory), then argv[0]'s.
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).map { URL(fileURLWithPath: $0) }
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for directory in [own, argv0].compactMap({ $0?.deletingLastPathComponent() }) {
            let path = directory.appendingPathComponent("runwarden").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw BenchError("no runwarden executable next to this one; build it (swift build -c release --product runwarden) or pass --server-binary")
    }

    /// width: for each --width-tasks W, the one-run phase and the many-runs phase, each on a
    /// fresh server (a long lease: a claimed task waiting for its report must not be reaped).
    func width(_ binary: String, _ directory: String, postgres: String? = nil) async throws -> JSONValue {
        var members: [JSONValue.Member] = []
        let store = postgres == nil ? "sqlite" : "postgres"
        for tasks in widthTasks.split(separator: ",").compactMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
            let label = "\(tasks) \(store)"
            let one = try await withServer(binary, directory, name: "width-\(tasks)-one-\(store)", database: postgres, lease: "2h") { server, client in
                say("width server pid \(server.pid) on \(server.base) (\(store)): one run of \(tasks) tasks, \(widthRunners) runner loops")
                return await WidthWorkload.oneRun(client, server: server, tasks: tasks, runners: widthRunners, maxSeconds: widthMaxSeconds, label: label)
            }
            try await Task.sleep(for: .seconds(settle))
            let many = try await withServer(binary, directory, name: "width-\(tasks)-many-\(store)", database: postgres, lease: "2h") { server, client in
                say("width server pid \(server.pid) on \(server.base) (\(store)): \(tasks) one-task runs, \(widthRunners) runner loops")
                return await WidthWorkload.manyRuns(
                    client, server: server, tasks: tasks, runners: widthRunners, maxSeconds: widthMaxSeconds, label: label, cleanUp: postgres != nil)
            }
            let summary = WidthWorkload.summary(tasks: tasks, runners: widthRunners, one: one, many: many)
            say("  width \(label): one/many \(fmt(summary["one_over_many"]?.doubleValue, 3)) (\(summary["ratio_basis"]?.stringValue ?? "no ratio"); target ≤ 1.3)")
            members.append(.init(String(tasks), summary))
            try await Task.sleep(for: .seconds(settle))
        }
        return .object(members)
    }

    /// lifecycle and read (+ fan-out and webhooks) against one server.
    func mainServer(
        _ client: BenchClient, server: ServerProcess, selected: Set<String>, levels: [Int], levelDuration: Duration,
        directory: String, profileSuffix: String = ""
    ) async throws -> [JSONValue.Member] {
        var sections: [JSONValue.Member] = []
        var readIDs: [String] = []
        if selected.contains("lifecycle") {
            var lifecycle: [JSONValue.Member] = []
            for level in levels {
                let profiler = level == levels.max() ? Profiler(pid: server.pid, directory: profile, name: "lifecycle-c\(level)\(profileSuffix)") : nil
                let (json, tally) = await LifecycleWorkload.level(
                    client, concurrency: level, duration: levelDuration, maxIterations: maxIterations, serverPID: server.pid)
                profiler?.finish()
                readIDs += tally.okIDs
                lifecycle.append(.init(String(level), json))
                say("  lifecycle c=\(pad(String(level), 3, right: false)) \(pad(fmt(json["runs_per_s"]?.doubleValue, 1), 8)) runs/s  ok=\(tally.ok) failed=\(tally.failed)  (\(fmt(json["wall_s"]?.doubleValue)) s, \(json["stopped_by"]?.stringValue ?? "-"))  \(failuresText(tally.failures))")
                try await Task.sleep(for: .seconds(settle))
            }
            sections.append(.init("lifecycle", .object(lifecycle)))
        }
        if selected.contains("read") {
            // 200 distinct runs, as the Prefect script reads.
            readIDs = Array(Set(readIDs).prefix(200))
            while readIDs.count < 200 {
                readIDs.append(try await client.setup(.POST, "/v1/runs", body: Bodies.oneTaskRun).decode(Created.self).id)
            }
            let ids = readIDs
            var read: [JSONValue.Member] = []
            var health: [JSONValue.Member] = []
            for level in levels {
                let profiler = level == levels.max() ? Profiler(pid: server.pid, directory: profile, name: "read-c\(level)\(profileSuffix)") : nil
                var readJSON = await ReadWorkload.level(
                    client, concurrency: level, duration: levelDuration, maxIterations: maxReads, serverPID: server.pid
                ) { worker, sequence in
                    "/v1/runs/\(ids[(worker * 7919 + sequence) % ids.count])"
                }
                profiler?.finish()
                try await Task.sleep(for: .seconds(settle))
                let healthJSON = await ReadWorkload.level(
                    client, concurrency: level, duration: levelDuration, maxIterations: maxReads, serverPID: server.pid
                ) { _, _ in "/healthz" }
                let reads = readJSON["reads_per_s"]?.doubleValue ?? 0
                let healthz = healthJSON["reads_per_s"]?.doubleValue ?? 0
                if case .object(var members) = readJSON {
                    members.append(.init("read_over_health", number(healthz > 0 ? reads / healthz : nil, digits: 3)))
                    readJSON = .object(members)
                }
                read.append(.init(String(level), readJSON))
                health.append(.init(String(level), healthJSON))
                say("  read      c=\(pad(String(level), 3, right: false)) \(pad(fmt(reads), 9)) req/s   healthz \(pad(fmt(healthz), 9)) req/s   read/healthz \(fmt(healthz > 0 ? reads / healthz : nil, 3))  failed \(readJSON["failed"]?.doubleValue.map { Int($0) } ?? 0)/\(healthJSON["failed"]?.doubleValue.map { Int($0) } ?? 0)")
                try await Task.sleep(for: .seconds(settle))
            }
            sections.append(.init("read", .object(read)))
            sections.append(.init("healthz", .object(health)))
        }
        if selected.contains("fanout") {
            sections.append(.init("fanout", try await FanOutWorkload.run(client, serverPID: server.pid, timeout: .seconds(Int64(fanoutMaxSeconds)))))
            try await Task.sleep(for: .seconds(settle))
        }
        if selected.contains("webhooks") {
            sections.append(.init("webhooks", try await WebhookWorkload.run(client, serverPID: server.pid, directory: directory, burstRuns: webhookRuns, pacedRuns: 50)))
        }
        if selected.contains("create"), let level = levels.max() {
            // The write path alone: POST /v1/runs (a 1-task run) and nothing else. Last on this
            // server: the runs it leaves queued would otherwise be claimed (oldest first) by the
            // fan-out and webhook runners.
            let json = await ReadWorkload.level(
                client, concurrency: level, duration: levelDuration, maxIterations: maxIterations * 4, serverPID: server.pid,
                method: .POST, body: Bodies.oneTaskRun
            ) { _, _ in "/v1/runs" }
            sections.append(.init("create", .object([.init(String(level), json)])))
            say("  create    c=\(pad(String(level), 3, right: false)) \(pad(fmt(json["reads_per_s"]?.doubleValue), 9)) creates/s  p50 \(fmt(json["p50_ms"]?.doubleValue, 2)) ms  p99 \(fmt(json["p99_ms"]?.doubleValue, 2)) ms  failed \(Table.int(json["failed"]))")
            try await Task.sleep(for: .seconds(settle))
        }
        return sections
    }

    func machine(started: String, loadBefore: [Double], totalSeconds: Double, levels: [Int], levelDuration: Duration, memoryRuns: Int) -> JSONValue {
        let cpuinfo = ProcFS.read("/proc/cpuinfo") ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }.map {
            $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        }
        let meminfo = ProcFS.read("/proc/meminfo") ?? ""
        let memKiB = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }.flatMap {
            Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return .object([
            "levels": .array(levels.map { .int(Int64($0)) }),
            "duration_s": number(levelDuration.seconds),
            "max_iterations": .int(Int64(maxIterations)), "max_reads": .int(Int64(maxReads)),
            "memory_runs": .int(Int64(memoryRuns)),
            "started_utc": .string(started),
            "finished_utc": .string(ISO8601DateFormatter().string(from: Date())),
            "total_s": number(totalSeconds, digits: 1),
            "loadavg_before": .array(loadBefore.map { .double($0) }),
            "loadavg_after": .array(ProcFS.loadAverage().map { .double($0) }),
            "host": .string(ProcessInfo.processInfo.hostName),
            "cpus": .int(Int64(ProcessInfo.processInfo.activeProcessorCount)),
            "cpu_model": JSONValue(model),
            "mem_total_mib": number(memKiB.map { $0 / 1024 }),
            "kernel": .string(ProcessInfo.processInfo.operatingSystemVersionString),
            "durability": .string("as the server configures SQLite (WAL; synchronous = FULL asked); workloads.durability says whether commits were synced"),
            "client": .string("AsyncHTTPClient, HTTP/1.1 keep-alive, one connection per concurrent request, same machine"),
            "notes": .string("runs_per_s/reads_per_s = successes / wall seconds of the level; latency over every request that got an HTTP response; rss = VmRSS of the server process"),
        ])
    }
}

/// memory: RSS of a fresh server idle, then after `runs` finished lifecycles (concurrency 32),
/// and the SQLite database size (file + WAL + SHM) per 100k runs.
enum MemoryWorkload {
    static func run(_ client: BenchClient, server: ServerProcess, runs: Int, maxSeconds: Double) async throws -> JSONValue {
        try await Task.sleep(for: .seconds(2))
        let rssIdle = server.rssMiB
        let dbEmpty = server.databaseBytes
        say("memory server pid \(server.pid): RSS idle \(fmt(rssIdle)) MiB; \(runs) lifecycles at c=32 …")
        let bound = Bound(maxIterations: runs, duration: .milliseconds(Int64(maxSeconds * 1000)))
        let sampler = RSSSampler(pid: server.pid)
        let sampling = Task { await sampler.run() }
        let progress = Task {
            let start = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(30))
                if Task.isCancelled { break }
                say("  memory: \(bound.iterations) runs after \(Int((ContinuousClock.now - start).seconds)) s, RSS \(fmt(server.rssMiB)) MiB")
            }
        }
        let meter = CPUMeter(serverPID: server.pid)
        let (tally, wall) = await runLevel(concurrency: 32, bound: bound, iteration: LifecycleWorkload.iteration(client, runnerPrefix: "mem"))
        let cpu = meter.finish()
        progress.cancel()
        let peak = sampler.finish()
        sampling.cancel()
        let rssLoaded = server.rssMiB
        await server.waitUntilIdle()
        try await Task.sleep(for: .seconds(3))
        let rssAfter = server.rssMiB
        let bytes = server.databaseBytes
        let walBytes = server.sqlitePath.map { ProcFS.fileSize($0 + "-wal") }
        let per100k = bytes.map { Double($0) * 100_000 / Double(max(1, tally.ok)) / 1_048_576 }
        say("  memory: \(tally.ok) runs in \(fmt(wall)) s (\(fmt(Double(tally.ok) / wall)) runs/s, \(tally.failed) failed); RSS idle \(fmt(rssIdle)) → after \(fmt(rssAfter)) MiB (peak \(fmt(Double(peak) / 1024))); database \(fmt(bytes.map { Double($0) / 1_048_576 })) MiB = \(fmt(per100k)) MiB per 100k runs")
        return .object([
            "runs": .int(Int64(tally.ok)), "failed": .int(Int64(tally.failed)), "failures": dictJSON(tally.failures),
            "target_runs": .int(Int64(runs)), "stopped_by": JSONValue(bound.stoppedBy),
            "wall_s": number(wall), "runs_per_s": number(Double(tally.ok) / wall),
            "rss_mb_idle": number(rssIdle),
            "rss_mb_under_load_end": number(rssLoaded),
            "rss_mb_after": number(rssAfter),
            "rss_mb_peak": number(Double(peak) / 1024),
            "database_mb_empty": number(dbEmpty.map { Double($0) / 1_048_576 }),
            "database_mb": number(bytes.map { Double($0) / 1_048_576 }),
            "wal_mb": number(walBytes.map { Double($0) / 1_048_576 }),
            "database_mb_per_100k_runs": number(per100k),
            "extrapolated": .bool(tally.ok < 100_000),
            "cpu": cpu,
        ])
    }
}
