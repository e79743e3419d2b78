import Foundation
import Logging
import RunwardenCore
import RunwardenStore
@testable import RunwardenStorePostgres
import Synchronization
import RunwardenTestSupport
import Testing

/// What only the PostgreSQL backend must do: stay correct with several server nodes on one
/// database, and tell the other nodes what changed.
@Suite("PostgreSQL store with several nodes")
struct PostgresSpecificTests {
    /// Two nodes on one fresh database, migrated at the same moment (as nodes starting together do).
    func twoNodes(on database: String? = nil) async throws -> (PostgresRunStore, PostgresRunStore) {
        let url: String
        if let database { url = database } else { url = try await PostgresTestCluster.database() }
        async let first = openPostgresStore(url: url)
        async let second = openPostgresStore(url: url)
        return try await (first, second)
    }

    @Test("sixteen runners on two nodes claiming at once get every task exactly once")
    func concurrentClaimsAcrossNodes() async throws {
        let (nodeA, nodeB) = try await twoNodes()
        var created: [Run] = []
        for index in 0..<40 {
            // Two tasks per run, so claims also meet on the same run row.
            created.append(try await create(index.isMultiple(of: 2) ? nodeA : nodeB, [task("a\(index)"), task("b\(index)")], now: at(index)))
        }
        let claims = try await withThrowingTaskGroup(of: [(runner: String, taskID: String)].self) { group in
            for (nodeName, node) in [("a", nodeA), ("b", nodeB)] {
                for worker in 0..<8 {
                    let runner = "\(nodeName)-\(worker)"
                    group.addTask {
                        var mine: [(runner: String, taskID: String)] = []
                        while let claim = try await node.claim(runner: runner, labels: [], now: at(100)) {
                            mine.append((runner, claim.value.id))
                        }
                        return mine
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let allTasks = Set(created.flatMap { $0.tasks.map(\.id) })
        #expect(claims.count == 80)
        #expect(Set(claims.map(\.taskID)) == allTasks)
        #expect(Set(claims.map(\.runner)).count > 1)
        for claim in claims {
            let (record, index) = try #require(try await nodeB.task(id: claim.taskID))
            #expect(record.run.tasks[index].status == .dispatched)
            #expect(record.run.tasks[index].state.runner == claim.runner)
        }
        // Each run went `running` once and numbered its events 1, 2, 3 … without gaps.
        for run in created {
            let events = try await nodeA.events(runID: run.id, after: 0, limit: 100)
            #expect(events.map(\.runSeq) == Array(1...events.count))
            #expect(events.filter { $0.draft.type == "run.running" }.count == 1)
        }
    }

    @Test("runners racing for one run's parallel tasks each get one, none is told there is nothing")
    func fanOutClaims() async throws {
        let (nodeA, nodeB) = try await twoNodes()
        let run = try await create(nodeA, (0..<12).map { task("shard\($0)") })
        let claimed = try await withThrowingTaskGroup(of: String?.self) { group in
            for worker in 0..<12 {
                let node = worker.isMultiple(of: 2) ? nodeA : nodeB
                group.addTask { try await node.claim(runner: "r\(worker)", labels: [], now: at(1))?.value.id }
            }
            return try await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(claimed.allSatisfy { $0 != nil })
        #expect(Set(claimed.compactMap { $0 }) == Set(run.tasks.map(\.id)))
    }

    @Test("a workspace goes to exactly one runner when nodes race for it")
    func workspaceRaceAcrossNodes() async throws {
        let (nodeA, nodeB) = try await twoNodes()
        for index in 0..<10 { try await create(nodeA, [task("deploy\(index)", workspace: "repo")], now: at(index)) }
        let winners = try await withThrowingTaskGroup(of: String?.self) { group in
            for worker in 0..<16 {
                let node = worker.isMultiple(of: 2) ? nodeA : nodeB
                group.addTask { try await node.claim(runner: "r\(worker)", labels: [], now: at(20))?.value.id }
            }
            return try await group.reduce(into: [String]()) { if let id = $1 { $0.append(id) } }
        }
        #expect(winners.count == 1)
        let locks = try await nodeB.locks()
        #expect(locks.map(\.taskID) == winners)
        #expect(locks.map(\.workspace) == ["repo"])
    }

    /// The proof of SPEC §7's ordering with writers committing in parallel: sixteen writers on
    /// two nodes race while a reader polls the feed; it must never see a smaller `seq` appear
    /// behind one it has seen, so in the end it has seen every event, in order.
    static let orderedRuns = 150

    @Test("events written on two nodes at once reach a polling reader in seq order, none skipped")
    func eventOrderAcrossNodes() async throws {
        let (nodeA, nodeB) = try await twoNodes()
        var runs: [String] = []
        for index in 0..<Self.orderedRuns { runs.append(try await create(nodeA, [task("t\(index)")], now: at(index)).id) }
        // Runs whose events slow writers append by hand (claimed by nobody: no label matches).
        var slowRuns: [String] = []
        for index in 0..<2 { slowRuns.append(try await create(nodeB, [task("slow\(index)", labels: ["nobody"])], now: at(index)).id) }
        let writersDone = Flag()

        async let reading: [Event] = {
            var seen: [Event] = []
            var cursor: Int64 = 0
            while true {
                let finished = writersDone.isSet
                // Pages large enough to keep the reader at the head, where writers are in flight.
                let page = try await nodeB.events(runID: nil, after: cursor, limit: 500)
                // Whatever a reader sees comes after its cursor, in order.
                #expect(page.map(\.seq) == page.map(\.seq).sorted() && Set(page.map(\.seq)).count == page.count)
                #expect(page.allSatisfy { $0.seq > cursor })
                seen += page
                cursor = page.last?.seq ?? cursor
                if page.isEmpty {
                    if finished { return seen }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
        }()

        try await withThrowingTaskGroup(of: Void.self) { group in
            let fastWriters = Flag()
            // Slow writers hold their numbers uncommitted for 5 ms at a time, so the fast ones
            // keep committing greater numbers past them: the case the fence is for.
            for (slowRun, node) in zip(slowRuns, [nodeA, nodeB]) {
                group.addTask {
                    var runSeq = 1
                    while !fastWriters.isSet {
                        runSeq += 1
                        let draft = EventDraft(
                            id: Identifier.make(.evt, at: at(100)), runID: slowRun, taskID: nil, type: "run.queued", status: "queued",
                            previousStatus: "queued", timestamp: at(100), attempt: nil, error: nil)
                        try await node.transaction(.write) { [runSeq] tx in
                            let numbered = try await PostgresRunStore.numbered([ChangePlan.NumberedDraft(draft: draft, runSeq: runSeq)], tx)
                            try await PostgresRunStore.insert(numbered.events, deliveries: [], now: at(100), tx)
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { fast in
                for (nodeName, node) in [("a", nodeA), ("b", nodeB)] {
                    for worker in 0..<8 {
                        let runner = "\(nodeName)-\(worker)"
                        fast.addTask {
                            while let claim = try await node.claim(runner: runner, labels: [], now: at(100)) {
                                // Heartbeats (task rows only) interleave with changes (run row first).
                                _ = try await node.heartbeat(runner: runner, taskIDs: [claim.value.id], now: at(100))
                                for status in [TaskStatus.running, .succeeded] {
                                    _ = try await node.update(runID: claim.value.runID, now: at(101)) { change in
                                        try change.report(taskID: claim.value.id, StatusReport(status: status), runner: runner)
                                    }
                                }
                            }
                        }
                    }
                }
                try await fast.waitForAll()
            }
            fastWriters.set()
            try await group.waitForAll()
        }
        writersDone.set()
        let seen = try await reading

        let all = try await nodeA.events(runID: nil, after: 0, limit: 10_000)
        // Per run: run.created, task.dispatched, run.running, task.running, task.succeeded, run.succeeded.
        #expect(all.filter { $0.draft.runID.map(runs.contains) == true }.count == Self.orderedRuns * 6)
        #expect(all.count > Self.orderedRuns * 6, "the slow writers wrote too")
        #expect(all.map(\.seq) == all.map(\.seq).sorted())
        // Nothing committed behind the reader's cursor: it saw every event (numbers may have
        // gaps where a transaction rolled back; none here is skipped).
        #expect(seen.map(\.seq) == all.map(\.seq), "the reader skipped \(Set(all.map(\.seq)).subtracting(seen.map(\.seq)).count) events")
        #expect(seen == all)
        for runID in runs {
            let events = all.filter { $0.draft.runID == runID }
            #expect(events.map(\.runSeq) == Array(1...events.count))
            #expect(events.last?.draft.type == "run.succeeded")
        }
        #expect(try await nodeB.latestSeq() == Int64(all.count))
    }

    @Test("a node listening hears within a second what another node committed")
    func listenAcrossNodes() async throws {
        let url = try await PostgresTestCluster.database()
        let (nodeA, nodeB) = try await twoNodes(on: url)
        let heard = HeardTopics()
        let listener = Task { try await nodeB.listen { topic in await heard.add(topic) } }
        // PostgreSQL delivers notifications in commit order: once a NOTIFY sent after a commit
        // is heard, everything that commit announced has been heard too.
        func fence(_ name: String) async throws -> Bool {
            let database = String(url.split(separator: "/").last ?? "")
            try await PostgresTestCluster.superuserSQL(
                "SELECT pg_notify('\(PostgresChangeTopic.channel)', '\(name)')", database: database)
            return await heard.wait(for: name, within: .seconds(10))
        }
        defer { listener.cancel() }
        // Listening has started once the (re)connect wake-ups arrive.
        #expect(await heard.wait(for: "events", within: .seconds(10)))
        await heard.clear()

        let run = try await create(nodeA, [task("build")])
        let start = ContinuousClock.now
        #expect(await heard.wait(for: "run:\(run.id)", within: .seconds(1)))
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(await heard.wait(for: "events", within: .seconds(1)))
        #expect(await heard.wait(for: "claims", within: .seconds(1)))
        #expect(await !heard.contains("deliveries"))

        // A claim changes the run but frees nothing.
        await heard.clear()
        let claimed = try #require(try await nodeA.claim(runner: "r", labels: [], now: at(1)))
        #expect(await heard.wait(for: "run:\(run.id)", within: .seconds(1)))
        #expect(await heard.wait(for: "events", within: .seconds(1)))
        #expect(await !heard.contains("claims"))

        // A heartbeat steps nothing and announces nothing: between a fence before it and one
        // after it, nothing is heard. (The first fence also drains whatever the claim announced.)
        #expect(try await fence("fence-before-heartbeat"))
        await heard.clear()
        _ = try await nodeA.heartbeat(runner: "r", taskIDs: [claimed.value.id], now: at(2))
        #expect(try await fence("fence-after-heartbeat"))
        #expect(await heard.topics == ["fence-after-heartbeat"])

        // Ending the task frees its claim slot for others only through the run's own topic.
        _ = try await nodeA.update(runID: run.id, now: at(3)) { change in try change.cancel() }
        #expect(await heard.wait(for: "run:\(run.id)", within: .seconds(1)))
    }

    @Test("an unreachable database answers unavailable instead of hanging")
    func unreachableDatabaseIsUnavailable() async throws {
        var logger = Logger(label: "runwarden.store-tests")
        logger.logLevel = .critical
        let store = try PostgresRunStore(
            url: "postgres://postgres@127.0.0.1:1/nothing", connectionTimeout: .seconds(2), logger: logger)
        let runner = Task { await store.run() }
        defer { runner.cancel() }
        let start = ContinuousClock.now
        await #expect(throws: StoreError.self) { try await store.checkHealth() }
        do {
            _ = try await store.run(id: "run_x")
            Issue.record("a read must fail")
        } catch let error as StoreError {
            guard case .unavailable(let reason) = error else { return }
            #expect(reason.contains("127.0.0.1:1/nothing"))
        }
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    @Test("a database URL that is not postgres://user@host:port/db is refused", arguments: [
        "mysql://root@localhost/db", "postgres://localhost:5432/db", "postgres://user@host:5432/", "not a url",
    ])
    func badURLs(url: String) {
        #expect(throws: PostgresConfigurationError.self) {
            _ = try PostgresRunStore(url: url, logger: Logger(label: "runwarden.store-tests"))
        }
    }
}

/// A flag set once, read from any task.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Topics a listener heard, in order.
actor HeardTopics {
    private(set) var topics: [String] = []

    func add(_ topic: String) { topics.append(topic) }
    func clear() { topics = [] }
    func contains(_ topic: String) -> Bool { topics.contains(topic) }

    /// True once `topic` has been heard, false when `within` passes first.
    func wait(for topic: String, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while !topics.contains(topic) {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    @Test("a database a newer runwarden migrated is refused at start with a message that says so")
    func newerSchemaIsRefused() async throws {
        let url = try await PostgresTestCluster.database()
        let store = try await openPostgresStore(url: url, maxConnections: 2)
        try await store.transaction(.write) { tx in
            try await tx.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from-the-future', 0)")
        }
        do {
            try await store.migrate()
            Issue.record("a database with an unknown migration was migrated")
        } catch let StoreError.unavailable(message) {
            #expect(message.contains("newer runwarden") && message.contains("9999"), "\(message)")
        }
    }

    @Test("an idempotency row written before the digest migration is rewritten to the SHA-256 the store computes")
    func idempotencyBodiesBecomeDigests() async throws {
        let url = try await PostgresTestCluster.database()
        let store = try await openPostgresStore(url: url, maxConnections: 2, migratedThrough: 4)
        let oldBody = #"{"tasks":[{"command":"deploy","env":{"TOKEN":"s3cret é"},"name":"a"}],"workflow":"w"}"#
        try await store.transaction(.write) { tx in
            try await tx.execute(
                "INSERT INTO idempotency_keys (scope, key, body, run_id, created_at) VALUES ('open', 'k1', \(oldBody), 'run_1', 0)")
        }
        try await store.migrate()
        let stored = try await store.transaction(.read) { tx in
            try await tx.rows("SELECT body_sha256 FROM idempotency_keys WHERE key = 'k1'").first?.decode(String.self)
        }
        #expect(stored == IdempotencyKey.digest(oldBody))
    }
}
