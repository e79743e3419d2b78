import Foundation
import GRDB
import RunwardenCore
import RunwardenTestSupport
import Testing

@testable import RunwardenStore
@testable import RunwardenStorePostgres
@testable import RunwardenStoreSQLite

/// Each backend executes a change's plan touching only the tasks the change is about, and
/// runs stored before the plan existed (no `dependents`, counts or `needsLeft`) go on correctly.
@Suite("Scoped changes in the stores")
struct ScopedChangeStoreTests {
    @Test("a report loads its task and the tasks that need it, not the other tasks of a wide run", arguments: Backend.all)
    func reportLoadsItsScope(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let others = (0..<300).map { task("other\($0)", labels: ["elsewhere"]) }
        let run = try await create(store, [task("root"), task("child", needs: ["root"])] + others)
        let root = run.tasks[0].id

        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        #expect(claimed.value.id == root)
        #expect(claimed.record.run.tasks.map(\.id) == [root], "a claim loads only its task")
        let running = try #require(
            try await store.update(runOfTask: root, dependents: false, now: at(2)) { change in
                try change.report(taskID: root, StatusReport(status: .running), runner: "r")
            })
        #expect(running.record.run.tasks.count == 1)
        let succeeded = try #require(
            try await store.update(runOfTask: root, dependents: true, now: at(3)) { change in
                try change.report(taskID: root, StatusReport(status: .succeeded), runner: "r")
            })
        #expect(succeeded.record.run.tasks.map(\.name) == ["root", "child"])
        #expect(succeeded.events.map(\.draft.type) == ["task.succeeded", "task.queued"])

        let stored = try #require(try await store.run(id: run.id)).run
        #expect(stored.tasks.map(\.status).prefix(2) == [.succeeded, .queued])
        #expect(stored.state.taskCounts == TaskCounts(stored.tasks), "counts kept as the changes committed")
        #expect(stored.state.version == 4)
        #expect(Snapshot.progress(of: stored).queued == 301)
        let summary = try #require(try await store.runSummary(id: run.id))
        #expect(summary.tasks.isEmpty)
        #expect(summary.state == stored.state, "a summary reads the run's row only")
        #expect(try await store.runs(RunQuery()).runs == [summary])
    }

    @Test("a run wider than one statement's rows is created, canceled whole and read back whole", arguments: Backend.all)
    func runWiderThanOneStatement(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        // Past 500 rows a statement, PostgreSQL writes the tasks in batches before the one that
        // numbers the events; below, the rows ride on it.
        let run = try await create(store, (0..<1_201).map { task("t\($0)") })
        #expect(try #require(try await store.run(id: run.id)).run.tasks.count == 1_201)
        let canceled = try #require(try await store.update(runID: run.id, now: at(1)) { change in try change.cancel() })
        #expect(canceled.record.run.status == .canceled)
        #expect(canceled.events.count == 1_202, "a task.canceled per task and the run's own")
        let stored = try #require(try await store.run(id: run.id)).run
        #expect(stored.tasks.count == 1_201)
        #expect(stored.tasks.allSatisfy { $0.status == .canceled })
        #expect(stored.state.taskCounts == TaskCounts(stored.tasks))
        #expect(stored.state.version == canceled.record.run.state.version)
        let small = try await create(store, [task("a"), task("b")], workflow: "small", now: at(2))
        #expect(try #require(try await store.run(id: small.id)).run.tasks.map(\.status) == [.queued, .queued])
    }

    @Test("a task that fails its run reaches for the whole run: every other task ends in the same commit", arguments: Backend.all)
    func failureLoadsTheWholeRun(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("a"), task("b"), task("c", needs: ["a"])])
        let a = run.tasks[0].id
        _ = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
        let failed = try #require(
            try await store.update(runOfTask: a, dependents: true, now: at(2)) { change in
                try change.report(taskID: a, StatusReport(status: .failed, exitCode: 1), runner: "r")
            })
        #expect(failed.record.run.tasks.count == 3)
        #expect(failed.record.run.status == .failed)
        let stored = try #require(try await store.run(id: run.id)).run
        #expect(stored.tasks.map(\.status) == [.failed, .skipped, .skipped])
        #expect(stored.tasks[2].state.error?.code == TaskErrorCode.needsNotMet.rawValue)
        #expect(stored.state.taskCounts == TaskCounts(stored.tasks))
    }

    @Test("a claim takes the oldest task of the label sets the runner can take, past a backlog of sets it cannot", arguments: Backend.all)
    func claimsPassOverOtherLabelSets(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        try await create(store, (0..<200).map { task("gpu\($0)", labels: ["gpu"]) }, now: at(0))
        try await create(store, [task("both", labels: ["linux", "gpu", "linux"])], now: at(1))
        let plain = try await create(store, [task("plain")], now: at(2))
        let linux = try await create(store, [task("linux", labels: ["linux"])], now: at(3))

        let first = try #require(try await store.claim(runner: "l", labels: ["linux"], now: at(4)))
        #expect(first.value.runID == plain.id, "the oldest task a linux runner can take")
        let second = try #require(try await store.claim(runner: "l", labels: ["linux"], now: at(5)))
        #expect(second.value.runID == linux.id)
        #expect(try await store.claim(runner: "l", labels: ["linux"], now: at(6)) == nil)
        let both = try #require(try await store.claim(runner: "lg", labels: ["gpu", "linux"], now: at(7)))
        #expect(both.value.name == "gpu0", "the oldest of all the sets it can take")
        let gpuLinux = try #require(try await store.claim(runner: "lg2", labels: ["linux", "gpu"], now: at(8)))
        #expect(gpuLinux.value.name == "gpu1")
    }

    // MARK: - Rows from before the plan

    /// A run a → b → c (and c needs a) written as the schema before `dependents` wrote it.
    static let runState = """
        {"status":"queued","version":1,"createdAt":{"milliseconds":1800000000000},\
        "updatedAt":{"milliseconds":1800000000000},"lastRunSeq":1}
        """
    static func taskSpec(_ name: String, needs: [String], labels: [String] = []) -> String {
        let needs = needs.map { "\"\($0)\"" }.joined(separator: ",")
        let labels = labels.map { "\"\($0)\"" }.joined(separator: ",")
        return #"{"name":"\#(name)","command":{"argv":{"_0":["true"]}},"env":{},"needs":[\#(needs)],"retries":0,"allowFailure":false,"labels":[\#(labels)]}"#
    }
    static let tasks: [(id: String, status: String, spec: String, state: String)] = [
        ("task_a", "queued", taskSpec("a", needs: []), #"{"status":"queued","attempt":1,"queuedAt":{"milliseconds":1800000000000},"holdsLock":false}"#),
        ("task_b", "pending", taskSpec("b", needs: ["a"]), #"{"status":"pending","attempt":1,"holdsLock":false}"#),
        ("task_c", "pending", taskSpec("c", needs: ["a", "b"], labels: ["linux", "gpu"]), #"{"status":"pending","attempt":1,"holdsLock":false}"#),
    ]

    @Test("the migrations list each older task's dependents and label set, and its run goes on to the end", arguments: Backend.all)
    func olderRunsGoOn(backend: Backend) async throws {
        let store = try await Self.storeWithAnOlderRun(backend)
        let a = try #require(try await store.task(id: "task_a")).record.run
        #expect(a.tasks.map(\.dependents) == [["task_b", "task_c"], ["task_c"], []])
        #expect(a.state.taskCounts == nil, "counted by the next whole-run change, not by the migration")
        let summary = try #require(try await store.runSummary(id: "run_old"))
        #expect(summary.state.taskCounts == TaskCounts(a.tasks), "a summary of an uncounted run counts in SQL")

        for (index, name) in ["a", "b", "c"].enumerated() {
            if name == "c" {
                let unlabelled = try await store.claim(runner: "r", labels: ["linux"], now: at(2 * index + 1))
                #expect(unlabelled == nil, "c needs both labels, as its spec says")
            }
            let claimed = try #require(try await store.claim(runner: "r", labels: ["gpu", "linux", "arm"], now: at(2 * index + 1)))
            #expect(claimed.value.id == "task_\(name)")
            _ = try await store.update(runOfTask: claimed.value.id, dependents: true, now: at(2 * index + 2)) { change in
                try change.report(taskID: claimed.value.id, StatusReport(status: .succeeded), runner: "r")
            }
        }
        let stored = try #require(try await store.run(id: "run_old")).run
        #expect(stored.status == .succeeded)
        #expect(stored.tasks.map(\.status) == [.succeeded, .succeeded, .succeeded])
        #expect(stored.state.taskCounts == TaskCounts(stored.tasks))
    }

    static func storeWithAnOlderRun(_ backend: Backend) async throws -> any RunStore {
        switch backend {
        case .sqlite:
            let (path, _) = try temporarySQLitePath()
            do {
                let pool = try DatabasePool(path: path)
                try SQLiteSchema.migrator.migrate(pool, upTo: "v8-status-counts")
                try await pool.write { db in
                    try db.execute(
                        sql: "INSERT INTO runs (id, workflow, status, version, created_at, spec, state) VALUES ('run_old', 'old', 'queued', 1, 0, ?, ?)",
                        arguments: [#"{"workflow":"old"}"#, runState])
                    for (position, task) in tasks.enumerated() {
                        try db.execute(
                            sql: """
                                INSERT INTO tasks (id, run_id, position, status, queued_at, spec, state)
                                VALUES (?, 'run_old', ?, ?, ?, ?, ?)
                                """,
                            arguments: [task.id, position, task.status, task.status == "queued" ? 0 : nil, task.spec, task.state])
                    }
                }
            }
            return try await SQLiteRunStore.open(path: path)
        case .postgres:
            let url = try await PostgresTestCluster.database()
            let store = try await openPostgresStore(url: url, maxConnections: 2, migratedThrough: 6)
            try await store.transaction(.write) { tx in
                try await tx.execute(
                    """
                    INSERT INTO runs (id, workflow, status, version, created_at, spec, state)
                    VALUES ('run_old', 'old', 'queued', 1, 0, \(#"{"workflow":"old"}"#), \(runState))
                    """)
                for (position, task) in tasks.enumerated() {
                    let queuedAt: Int64? = task.status == "queued" ? 0 : nil
                    try await tx.execute(
                        """
                        INSERT INTO tasks (id, run_id, position, status, labels, queued_at, spec, state)
                        VALUES (\(task.id), 'run_old', \(position), \(task.status), \(task.id == "task_c" ? ["gpu", "linux"] : [String]()),
                                \(queuedAt), \(task.spec), \(task.state))
                        """)
                }
            }
            try await store.migrate()
            return store
        }
    }
}
