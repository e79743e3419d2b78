import Foundation
import RunwardenCore
import GRDB
import RunwardenStore
@testable import RunwardenStoreSQLite
@testable import RunwardenStorePostgres
import PostgresNIO
import RunwardenTestSupport
import Testing

/// SPEC §10 "Priority": claims take the highest priority first, then the oldest — on every backend.
@Suite("Claim priorities")
struct PriorityStoreTests {
    static func run(_ name: String, count: Int = 1, runPriority: Int? = nil, taskPriority: Int? = nil, labels: [String] = []) -> RunDefinition {
        let tasks = (0..<count).map { index in
            TaskSpec(name: "\(name)-\(index)", command: .argv(["true"]), labels: labels, priority: taskPriority ?? runPriority ?? 0)
        }
        return RunDefinition(run: RunSpec(workflow: name, priority: runPriority), tasks: tasks)
    }

    static func store(_ definition: RunDefinition, in store: any RunStore, at now: Timestamp) async throws -> Run {
        let (run, event) = Run.create(
            definition, id: Identifier.make(.run, at: now), taskIDs: definition.tasks.map { _ in Identifier.make(.task, at: now) },
            eventID: Identifier.make(.evt, at: now), now: now)
        guard case .created(let committed) = try await store.createRun(run, event: event, idempotency: nil) else {
            throw StoreTestError.unexpected("create did not create")
        }
        return committed.record.run
    }

    @Test("a high-priority task queued after 1,000 low-priority ones is claimed first", arguments: Backend.all)
    func highPriorityIsClaimedFirst(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        _ = try await Self.store(Self.run("low", count: 1_000, runPriority: -10), in: store, at: at(0))
        let urgent = try await Self.store(Self.run("urgent", taskPriority: 50), in: store, at: at(1))
        let normal = try await Self.store(Self.run("normal"), in: store, at: at(2))

        let first = try #require(try await store.claim(runner: "host-a", labels: [], claimID: nil, now: at(3)))
        let second = try #require(try await store.claim(runner: "host-a", labels: [], claimID: nil, now: at(4)))
        let third = try #require(try await store.claim(runner: "host-a", labels: [], claimID: nil, now: at(5)))

        #expect(first.value.runID == urgent.id)
        #expect(second.value.runID == normal.id)
        #expect(third.value.name == "low-0")  // then the oldest of the low ones
    }

    @Test("priority is compared across the label sets a runner can take", arguments: Backend.all)
    func priorityAcrossLabelSets(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let plain = try await Self.store(Self.run("plain", runPriority: 1), in: store, at: at(0))
        let gpu = try await Self.store(Self.run("gpu", runPriority: 9, labels: ["gpu"]), in: store, at: at(1))
        _ = try await Self.store(Self.run("elsewhere", runPriority: 100, labels: ["arm"]), in: store, at: at(2))

        #expect(try await store.claim(runner: "host-a", labels: ["gpu"], claimID: nil, now: at(3))?.value.runID == gpu.id)
        #expect(try await store.claim(runner: "host-a", labels: ["gpu"], claimID: nil, now: at(4))?.value.runID == plain.id)
        #expect(try await store.claim(runner: "host-a", labels: ["gpu"], claimID: nil, now: at(5))?.value.id == nil)
    }
}

/// The claim's priority order is the index order: SQLite reads a label set's head as the first
/// index entry, never sorting the set (which would cost its backlog).
@Suite("Claim priorities on SQLite")
struct SQLitePriorityPlanTests {
    @Test("a label set's head is read from the priority index without a sort")
    func headLookupUsesTheIndexOrder() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let store = try await SQLiteRunStore.open(path: path)
        let plan = try await store.pool.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteRunStore.labelSetHead, arguments: ["[]"]).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("tasks_queued_by_priority") }, "\(plan)")
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
    }
}

/// The same on PostgreSQL: the claim's candidate query follows the claim index's order — highest
/// priority, then oldest — so it reads a label set's head, never sorts the backlog.
@Suite("Claim priorities on PostgreSQL")
struct PostgresPriorityPlanTests {
    @Test("the claim's candidate queries read the priority index in order, without a sort, over a backlog of 3,000")
    func candidateQueriesUseTheIndexOrder() async throws {
        let store = try await openPostgresStore(url: try await PostgresTestCluster.database())
        for (index, priority) in [-50, 0, 50].enumerated() {
            _ = try await PriorityStoreTests.store(
                PriorityStoreTests.run("backlog\(priority)", count: 1_000, runPriority: priority), in: store, at: at(index))
        }
        let plans = try await store.transaction(.write) { tx in
            try await tx.execute("ANALYZE tasks")
            try await tx.execute("ANALYZE runs")
            var plans: [String] = []
            for sql in [PostgresRunStore.firstFreeCandidateRun, PostgresRunStore.firstCandidateRun] {
                var binds = PostgresBindings()
                binds.append(ClaimSQL.labelsKey([]))
                let explain = "EXPLAIN " + sql.replacingOccurrences(of: "LABELS", with: "t.labels_key = $1")
                let lines = try await tx.rows(PostgresQuery(unsafeSQL: explain, binds: binds)).map { try $0.decode(String.self) }
                plans.append(lines.joined(separator: "\n"))
            }
            return plans
        }
        for plan in plans {
            #expect(plan.contains("tasks_queued_by_priority"), "\(plan)")
            #expect(!plan.contains("Sort"), "\(plan)")
        }
        // And the order it reads is the claim order: the highest priority's oldest task first.
        #expect(try await store.claim(runner: "r1", labels: [], now: at(10))?.value.name == "backlog50-0")
    }
}
