import Foundation
import RunwardenCore
import RunwardenStore
@testable import RunwardenStorePostgres
import RunwardenTestSupport
import Synchronization
import Testing

/// The runs and tasks by status that /metrics reads are kept by triggers in shard rows per
/// backend (`status_counts`): writers never queue on one another's counts, and the rows of
/// backends that are gone do not pile up.
@Suite("PostgreSQL status counts")
struct PostgresStatusCountsTests {
    @Test("seventeen writers holding their transactions open never wait on one another's counts")
    func writersNeverShareACountRow() async throws {
        // More writers than the 16 shards of pid mod 16 before migration 18: two of them shared a
        // row there, and the second waited for the first's commit (or deadlocked with it).
        let writers = 17
        let store = try await openPostgresStore(url: try await PostgresTestCluster.database(), maxConnections: writers + 1)
        let run = try await create(store, (0..<writers).map { task("t\($0)") })
        let changed = WriterCount()
        let sawEveryone = try await withThrowingTaskGroup(of: Bool.self) { group in
            for task in run.tasks {
                group.addTask {
                    try await store.transaction(.write) { tx in
                        try await tx.execute("UPDATE tasks SET status = 'running' WHERE id = \(task.id)")
                        changed.value.add(1, ordering: .relaxed)
                        // Commit only once every writer has changed its task, each on its own
                        // connection with its transaction open; give up after 10 s.
                        let deadline = ContinuousClock.now + .seconds(10)
                        while changed.value.load(ordering: .relaxed) < writers {
                            if ContinuousClock.now > deadline { return false }
                            try await Task.sleep(for: .milliseconds(5))
                        }
                        return true
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(sawEveryone == Array(repeating: true, count: writers), "a writer waited for another's transaction")
        #expect(try await store.statusCounts() == StatusCounts(runs: ["queued": 1], tasks: ["running": writers]))
    }

    @Test("reading the counts folds the rows of backends that are gone into shard 0, keeping the sums")
    func goneBackendsAreFolded() async throws {
        let store = try await openPostgresStore(url: try await PostgresTestCluster.database())
        _ = try await create(store, [task("a"), task("b")])
        // Rows as migration 6 left them (shards 1…15), and as a backend that exited left them:
        // no live backend has pid 1 or 7.
        try await store.transaction(.write) { tx in
            try await tx.execute(
                """
                INSERT INTO status_counts VALUES ('tasks', 'queued', 1, 3), ('tasks', 'succeeded', 1, -3),
                    ('tasks', 'succeeded', 7, 3), ('runs', 'failed', 7, 0)
                """)
        }
        #expect(try await store.statusCounts() == StatusCounts(runs: ["queued": 1], tasks: ["queued": 5]))
        let leftOver = try await store.transaction(.read) { tx in
            try await tx.rows(
                "SELECT count(*) FROM status_counts WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)"
            ).first?.decode(Int64.self)
        }
        #expect(leftOver == 0)
        let folded = try await store.transaction(.read) { tx in
            try await tx.rows("SELECT status, n FROM status_counts WHERE kind = 'tasks' AND shard = 0 ORDER BY status")
                .map { try $0.decode((String, Int64).self) }
        }
        #expect(folded.map(\.0) == ["queued", "succeeded"] && folded.map(\.1) == [3, 0])
        #expect(try await store.statusCounts() == StatusCounts(runs: ["queued": 1], tasks: ["queued": 5]))
    }
}

/// How many writers have changed their task, shared by the writers' transactions.
private final class WriterCount: Sendable {
    let value = Atomic<Int>(0)
}
