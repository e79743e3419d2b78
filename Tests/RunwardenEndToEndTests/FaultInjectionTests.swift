import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// Faults against the real `runwarden` server and runner processes, on loopback: the server
/// killed with SIGKILL mid-batch, a webhook receiver that is down, the SQLite file locked by
/// another process, and the disk under it full. Every wait is bounded.
@Suite("Fault injection, end to end", .serialized, .timeLimit(.minutes(3)))
struct FaultInjectionTests {
    static let serverArguments = ["--lease", "5s"]

    /// Tasks get no retries: a claim the server commits just before it dies must still reach
    /// the runner (it repeats the claim with the same `claim_id`), or the task would fail
    /// `heartbeat_lost` one lease later and its run with it.
    @Test("kill -9 of the server three times during a batch of 50 runs: every run ends right, no report lost, no event twice, no task retried")
    func serverKilledThreeTimesDuringBatch() async throws {
        let seed = faultSeed()
        print("serverKilledThreeTimesDuringBatch seed: \(seed) (replay with RUNWARDEN_FAULT_SEED=\(seed))")
        var random = SeededRandom(seed: seed)
        let started = ContinuousClock.now
        let cluster = try Cluster()
        let marker = "fault-kill-\(UUID().uuidString.prefix(8).lowercased())"
        try await cluster.startServer(Self.serverArguments)
        let runner = try cluster.startRunner(concurrency: 4)

        let plans = FaultBatch.plan(count: 50, marker: marker, retries: 0, random: &random)
        var ids: [String] = []
        for (wave, range) in [0..<17, 17..<34, 34..<50].enumerated() {
            ids += try await cluster.submit(Array(plans[range]))
            // Kill while the wave's tasks are being claimed, run and reported.
            try await Task.sleep(for: random.milliseconds(250...700))
            let unfinished = (try? await cluster.client.runs(limit: 500).items.filter { !$0.isTerminal }.count) ?? -1
            await cluster.killServer()
            print("kill \(wave + 1): \(unfinished) runs unfinished at the kill")
            // Tasks go on finishing while the server is down; their reports wait in the spool.
            try await Task.sleep(for: random.milliseconds(200...900))
            try await cluster.startServer(Self.serverArguments)
        }

        let broken = try await cluster.expectBatchEndedRight(plans, ids: ids, within: .seconds(45))
        #expect(broken == 0, "\(broken) of \(plans.count) runs ended wrong (seed \(seed))")
        #expect(runner.isRunning, "the runner kept running through the restarts")
        let left = await cluster.waitForEmptySpool()
        #expect(left.isEmpty, "the runner's spool still holds \(left.count) reports")
        #expect(await eventually(within: .seconds(5)) { processes(matching: marker).isEmpty }, "task processes were left behind")
        #expect(!cluster.serverLogs.contains("Fatal error"), "a server crashed on its own")
        print("serverKilledThreeTimesDuringBatch: \(faultSeconds(since: started)) s")
    }

    @Test("a webhook receiver down for the whole batch changes no run status; its deliveries are logged as failed attempts")
    func webhookReceiverDown() async throws {
        let seed = faultSeed()
        print("webhookReceiverDown seed: \(seed) (replay with RUNWARDEN_FAULT_SEED=\(seed))")
        var random = SeededRandom(seed: seed)
        let started = ContinuousClock.now
        let cluster = try Cluster()
        let marker = "fault-hook-\(UUID().uuidString.prefix(8).lowercased())"
        let deadPort = try freeLoopbackPort()
        try await cluster.startServer(Self.serverArguments + ["--webhook-retry", "200ms,200ms"])
        let subscription = try await cluster.request(
            "POST", "/v1/webhooks",
            body: .object(["url": .string("http://127.0.0.1:\(deadPort)/hook"), "events": JSONValue(strings: ["run.*", "task.*"])]))
        try #require(subscription.status == 201, "subscribe answered \(subscription.status) \(subscription.code ?? "")")
        let webhookID = try #require(subscription.json?["id"]?.faultString)
        try cluster.startRunner(concurrency: 4)

        let plans = FaultBatch.plan(count: 10, marker: marker, random: &random)
        let ids = try await cluster.submit(plans)
        let broken = try await cluster.expectBatchEndedRight(plans, ids: ids, within: .seconds(30))
        #expect(broken == 0, "\(broken) of \(plans.count) runs ended wrong (seed \(seed))")

        // Every event of the batch has a delivery (events run.* and task.*; `*` would add the
        // runner's own runner.online) that is pending or failed, and
        // the attempts made so far are logged as network errors without a status code. (Each
        // attempt at a refused port takes the dispatcher's 5 s connect timeout and one URL gets
        // one attempt at a time — see `refusedDeliveryFailsOnSchedule` — so only the first
        // few deliveries can have been tried within the test's bounds.)
        var eventIDs: Set<String> = []
        for id in ids { eventIDs.formUnion(try await cluster.timeline(id).map(\.id)) }
        let deadline = ContinuousClock.now + .seconds(15)
        var deliveries: [JSONValue] = []
        while true {
            let page = try await cluster.request("GET", "/v1/webhooks/\(webhookID)/deliveries?limit=500")
            deliveries = page.json?["items"]?.faultArray ?? []
            let attempted = deliveries.filter { !($0["attempts"]?.faultArray ?? []).isEmpty }.count
            if (deliveries.count >= eventIDs.count && attempted >= 2) || ContinuousClock.now > deadline { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(Set(deliveries.compactMap { $0["event_id"]?.faultString }) == eventIDs, "one delivery per event")
        #expect(deliveries.count == eventIDs.count)
        var attemptsSeen = 0
        for delivery in deliveries {
            let status = delivery["status"]?.faultString ?? ""
            let attempts = delivery["attempts"]?.faultArray ?? []
            attemptsSeen += attempts.count
            #expect(status == "failed" || status == "pending", "delivery \(delivery)")
            if status == "failed" { #expect(attempts.count == 3, "a failed delivery has \(attempts.count) attempts, expected 3") }
            if status == "pending" { #expect(delivery["next_attempt_at"]?.faultString != nil, "a pending delivery without next_attempt_at") }
            for attempt in attempts {
                let error = attempt["error"]?.faultString ?? ""
                #expect(attempt["status_code"] == .null, "no receiver, no status code: \(attempt)")
                #expect(!error.isEmpty, "an attempt without an error: \(attempt)")
            }
        }
        #expect(attemptsSeen >= 1, "no delivery attempt was logged within 15 s")

        // A network error never disables the subscription; the runs are untouched by all this.
        let webhooks = try await cluster.request("GET", "/v1/webhooks")
        let webhook = webhooks.json?["items"]?.faultArray.first { $0["id"]?.faultString == webhookID }
        #expect(webhook?["status"]?.faultString == "active")
        for (plan, id) in zip(plans, ids) {
            #expect(try await cluster.client.run(id).status.rawValue == plan.runStatus)
        }
        print("webhookReceiverDown: \(deliveries.count) deliveries, \(attemptsSeen) attempts logged, \(faultSeconds(since: started)) s")
    }

    @Test(
        "a delivery to a port that refuses connections fails on the configured schedule (200ms,200ms: 3 attempts within a few seconds)")
    func refusedDeliveryFailsOnSchedule() async throws {
        let cluster = try Cluster()
        let deadPort = try freeLoopbackPort()
        try await cluster.startServer(["--webhook-retry", "200ms,200ms"])
        let subscription = try await cluster.request(
            "POST", "/v1/webhooks",
            body: .object(["url": .string("http://127.0.0.1:\(deadPort)/hook"), "events": JSONValue(strings: ["run.created"])]))
        let webhookID = try #require(subscription.json?["id"]?.faultString)
        _ = try await cluster.client.createRun(
            .object(["workflow": .string("refused"), "tasks": .array([.object(["name": .string("a"), "command": .string("true")])])]))
        let started = ContinuousClock.now
        var delivery: JSONValue?
        while ContinuousClock.now < started + .seconds(6) {
            delivery = try await cluster.request("GET", "/v1/webhooks/\(webhookID)/deliveries").json?["items"]?.faultArray.first
            if delivery?["status"]?.faultString == "failed" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let attempts = delivery?["attempts"]?.faultArray ?? []
        #expect(delivery?["status"]?.faultString == "failed", "after \(faultSeconds(since: started)) s: \(attempts.count) attempts")
        #expect(attempts.count == 3)
        #expect(attempts.allSatisfy { ($0["latency_ms"]?.faultInt ?? .max) < 1000 }, "latencies \(attempts.map { $0["latency_ms"]?.faultInt ?? -1 })")
    }

    static let holdLockScript = """
        import sqlite3, sys, time
        c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
        c.execute('BEGIN EXCLUSIVE')
        print('locked', flush=True)
        time.sleep(float(sys.argv[2]))
        c.execute('COMMIT')
        c.close()
        print('released', flush=True)
        """

    @Test("the SQLite file locked by another process: a write waits out a short lock, a long one is 503 unavailable, nothing is corrupt")
    func databaseLockedByAnotherProcess() async throws {
        let started = ContinuousClock.now
        let cluster = try Cluster()
        try await cluster.startServer()
        let database = cluster.directory.appendingPathComponent("runwarden.sqlite").path
        func body(_ name: String) -> JSONValue {
            .object(["workflow": .string("locked-\(name)"), "tasks": .array([.object(["name": .string("a"), "command": .string("true")])])])
        }
        let first = try await cluster.client.createRun(body("first")).id

        // A lock shorter than the store's busy timeout (10 s): the write waits, then succeeds.
        let short = try ChildProcess(
            faultPython, ["-c", Self.holdLockScript, database, "2"], outputTo: cluster.directory.appendingPathComponent("lock-short.out"))
        try #require(await short.waitForOutput("locked", within: .seconds(10)), "python could not lock the file: \(short.output)")
        var clock = ContinuousClock.now
        let waited = try await cluster.request("POST", "/v1/runs", body: body("waited"))
        let waitedFor = faultSeconds(since: clock)
        #expect(waited.status == 202, "a write during a 2 s lock answered \(waited.status) \(waited.code ?? "")")
        #expect(waitedFor >= 1.0, "the write did not wait for the lock (\(waitedFor) s)")
        #expect(await short.waitForExit(within: .seconds(10)) == 0, "\(short.output)")
        let waitedID = waited.json?["id"]?.faultString

        // A lock longer than the busy timeout: reads go on (WAL), the write fails cleanly.
        let long = try ChildProcess(
            faultPython, ["-c", Self.holdLockScript, database, "12"], outputTo: cluster.directory.appendingPathComponent("lock-long.out"))
        try #require(await long.waitForOutput("locked", within: .seconds(10)), "python could not lock the file: \(long.output)")
        clock = ContinuousClock.now
        let read = try await cluster.request("GET", "/v1/runs/\(first)")
        #expect(read.status == 200, "a read during the lock answered \(read.status) \(read.code ?? "")")
        #expect(faultSeconds(since: clock) < 2, "a read waited for the writer's lock")
        clock = ContinuousClock.now
        let blocked = try await cluster.request("POST", "/v1/runs", body: body("blocked"))
        let blockedFor = faultSeconds(since: clock)
        #expect(
            (blocked.status == 503 && blocked.code == "unavailable") || blocked.status == 202,
            "a write during a 12 s lock answered \(blocked.status) \(blocked.code ?? ""), expected 503 unavailable (or success)")
        #expect(blocked.status != 500)
        #expect(blockedFor < 13, "the write was held \(blockedFor) s")
        print("databaseLockedByAnotherProcess: blocked write answered \(blocked.status) \(blocked.code ?? "") after \(blockedFor) s")
        #expect(await long.waitForExit(within: .seconds(20)) == 0, "\(long.output)")

        // Released: writes work again and nothing is corrupt or half-written.
        let after = try await cluster.request("POST", "/v1/runs", body: body("after"))
        #expect(after.status == 202, "a write after the lock answered \(after.status) \(after.code ?? "")")
        #expect(try await faultIntegrityCheck(database) == "ok")
        var expected = [first, waitedID, after.json?["id"]?.faultString].compactMap { $0 }
        if blocked.status == 202, let id = blocked.json?["id"]?.faultString { expected.append(id) }
        for id in expected {
            let run = try await cluster.client.run(id)
            #expect(run.status == .queued && run.version == 1 && run.tasks?.count == 1, "run \(id) reads back \(run.status) v\(run.version)")
        }
        let listed = try await cluster.client.runs(limit: 500).items.map(\.id)
        #expect(Set(listed) == Set(expected), "the failed write left a run behind: \(listed)")
        #expect(cluster.server.isRunning)
        print("databaseLockedByAnotherProcess: \(faultSeconds(since: started)) s")
    }

    @Test(
        "the disk under the SQLite file full: writes are 503 unavailable, reads go on, and once space is freed the store works with earlier runs intact",
        .enabled(if: FaultMount.canMountTmpfs, "mounting a 4 MiB tmpfs needs root"))
    func diskFull() async throws {
        let started = ContinuousClock.now
        let cluster = try Cluster()
        let filesystem = cluster.directory.appendingPathComponent("tinyfs")
        try FileManager.default.createDirectory(at: filesystem, withIntermediateDirectories: true)
        let mounted = try await ChildProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", filesystem.path])
        try #require(mounted.status == 0, "mount failed: \(mounted.output)")
        defer {
            // The server first (it holds the files open), then the filesystem.
            cluster.server?.stop()
            if (try? ChildProcess.runBlocking("/bin/umount", [filesystem.path]))?.status != 0 {
                _ = try? ChildProcess.runBlocking("/bin/umount", ["-l", filesystem.path])
            }
        }
        let database = filesystem.appendingPathComponent("runwarden.sqlite").path
        try await cluster.startServer(["--database", database])

        func body(_ name: String, padding: Int = 0) -> JSONValue {
            .object([
                "workflow": .string("disk-\(name)"), "tasks": .array([.object(["name": .string("a"), "command": .string("true")])]),
                "metadata": .object(["pad": .string(String(repeating: "p", count: padding))]),
            ])
        }
        var earlier: [String: JSONValue] = [:]
        for index in 0..<3 {
            let id = try await cluster.client.createRun(body("early-\(index)", padding: 2_000)).id
            earlier[id] = try await cluster.request("GET", "/v1/runs/\(id)").json?.canonical
        }

        let (filler, filled) = FaultMount.fill(filesystem)
        print("diskFull: filled \(filled) bytes, \(FaultMount.freeBytes(filesystem.path)) bytes left")
        #expect(FaultMount.freeBytes(filesystem.path) < 4096)

        // A write that needs new pages cannot be stored: a clear 503, never a 500 or a crash.
        let big = try await cluster.request("POST", "/v1/runs", body: body("big", padding: 400_000))
        #expect(big.status == 503 && big.code == "unavailable", "a write on a full disk answered \(big.status) \(big.code ?? "")")
        let small = try await cluster.request("POST", "/v1/runs", body: body("small"))
        #expect(
            small.status == 202 || (small.status == 503 && small.code == "unavailable"),
            "a small write on a full disk answered \(small.status) \(small.code ?? "")")
        print("diskFull: full disk answered \(big.status) \(big.code ?? "") to a 400 kB write, \(small.status) \(small.code ?? "") to a small one")
        for (id, snapshot) in earlier {
            let read = try await cluster.request("GET", "/v1/runs/\(id)")
            #expect(read.status == 200 && read.json?.canonical == snapshot, "run \(id) reads \(read.status) on a full disk")
        }
        #expect(cluster.server.isRunning, "the server died on a full disk: \(cluster.server.output.suffix(2000))")

        // Space freed: the same write goes through, and everything reads back.
        try FileManager.default.removeItem(at: filler)
        var again = try await cluster.request("POST", "/v1/runs", body: body("big", padding: 400_000))
        for _ in 0..<10 where again.status != 202 {
            try await Task.sleep(for: .milliseconds(300))
            again = try await cluster.request("POST", "/v1/runs", body: body("big", padding: 400_000))
        }
        #expect(again.status == 202, "a write after freeing space answered \(again.status) \(again.code ?? "")")
        if let id = again.json?["id"]?.faultString {
            let run = try await cluster.client.run(id)
            #expect(run.workflow == "disk-big" && run.version == 1)
        }
        for (id, snapshot) in earlier {
            #expect(try await cluster.request("GET", "/v1/runs/\(id)").json?.canonical == snapshot, "run \(id) changed")
        }
        let listed = Set(try await cluster.client.runs(limit: 500).items.map(\.id))
        var expected = Set(earlier.keys)
        if let id = again.json?["id"]?.faultString { expected.insert(id) }
        if small.status == 202, let id = small.json?["id"]?.faultString { expected.insert(id) }
        #expect(listed == expected, "runs listed \(listed.sorted()), expected \(expected.sorted())")
        #expect(try await faultIntegrityCheck(database) == "ok")
        print("diskFull: \(faultSeconds(since: started)) s")
    }
}

/// Seconds since `start`.
func faultSeconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}
