import Foundation
import GRDB
import RunwardenCore
import Testing

@testable import RunwardenStore
@testable import RunwardenStoreSQLite

/// What only the SQLite backend must get right.
@Suite("SQLite store")
struct SQLiteSpecificTests {
    @Test("the connection that commits runs with synchronous = FULL: every acknowledged commit is synced to the WAL")
    func writerSyncsEveryCommit() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let store = try await SQLiteRunStore.open(path: path)

        let level = try await store.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        let mode = try await store.pool.write { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(level == 2, "PRAGMA synchronous is \(level.map(String.init) ?? "nil"), not FULL (2)")
        #expect(mode == "wal")
    }

    @Test("a run's snapshot stamp moves with every committed change of its rows, and of the locks, before the writer hears back")
    func snapshotStampsMoveWithEveryChange() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let store = try await SQLiteRunStore.open(path: path)
        let other = try await create(store, [task("x", labels: ["nobody"])], workflow: "other", now: at(0))
        let unknown = try #require(store.snapshotStamp(runID: "run_unknown"))
        let run = try await create(store, [task("a", workspace: "repo")], now: at(1))
        let created = try #require(store.snapshotStamp(runID: run.id))
        let otherStamp = store.snapshotStamp(runID: other.id)
        #expect(created.run != unknown.run, "creating a run moves its stamp")

        _ = try await store.run(id: run.id)
        #expect(store.snapshotStamp(runID: run.id) == created, "a read moves nothing")

        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(2)))
        let afterClaim = try #require(store.snapshotStamp(runID: run.id))
        #expect(afterClaim.run != created.run)
        #expect(afterClaim.locks != created.locks, "the claim took the workspace's lock")

        let version = try #require(try await store.run(id: run.id)).run.state.version
        #expect(try await store.heartbeat(runner: "r", taskIDs: [claimed.value.id], now: at(3)).isEmpty)
        #expect(try #require(try await store.run(id: run.id)).run.state.version == version, "a heartbeat steps no version")
        let afterHeartbeat = try #require(store.snapshotStamp(runID: run.id))
        #expect(afterHeartbeat.run != afterClaim.run, "but it moves the stamp")

        _ = try await store.update(runOfTask: claimed.value.id, dependents: true, now: at(4)) { change in
            try change.report(taskID: claimed.value.id, StatusReport(status: .succeeded), runner: "r")
        }
        let finished = try #require(store.snapshotStamp(runID: run.id))
        #expect(finished.run != afterHeartbeat.run)
        #expect(finished.locks != afterHeartbeat.locks, "the end freed the lock")

        #expect(try await store.compactRuns(finishedBefore: at(5), limit: 10, now: at(6)) == 1)
        #expect(store.snapshotStamp(runID: run.id)?.run != finished.run, "compaction marks the snapshot")
        #expect(store.snapshotStamp(runID: other.id)?.run == otherStamp?.run, "another run's changes leave its stamp")
    }

    @Test("stamps stay bounded and never repeat for a run that changed, however many runs the store forgets")
    func snapshotStampsStayBounded() {
        let stamps = ChangeStamps(capacity: 2)
        var seen: [String: UInt64] = [:]
        for round in 0..<5 {
            for index in 0..<7 {
                let id = "run_\(index)"
                let before = stamps.stamp(runID: id).run
                stamps.noteChanged(id)
                stamps.publish()
                let after = stamps.stamp(runID: id).run
                #expect(after > before, "round \(round): \(id) did not move")
                if let earlier = seen[id] { #expect(after > earlier) }
                seen[id] = after
            }
        }
    }

    @Test("a file a newer runwarden migrated is refused, unchanged, with a message that says so")
    func newerSchemaIsRefused() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let store = try await SQLiteRunStore.open(path: path)
        try await store.pool.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v999-from-the-future')") }
        await store.close()

        do {
            _ = try await SQLiteRunStore.open(path: path)
            Issue.record("a database with an unknown migration was opened")
        } catch let StoreError.unavailable(message) {
            #expect(message.contains("newer runwarden"), "\(message)")
        }
        // Reopened by this version's migrator alone (no runwarden store): the row is still there.
        let reader = try DatabaseQueue(path: path)
        #expect(try await reader.read { db in try Bool.fetchOne(db, sql: "SELECT count(*) FROM grdb_migrations WHERE identifier = 'v999-from-the-future'") } == true)
    }

    @Test("a new file vacuums incrementally: the pages retention frees go back to the file system")
    func retentionGivesPagesBack() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let store = try await SQLiteRunStore.open(path: path)
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") } == 2, "not INCREMENTAL")

        // Runs with events worth several pages, finished, then compacted.
        let wide = (0..<200).map { task("t\($0)") }
        for index in 0..<5 {
            let run = try await create(store, wide, workflow: "w\(index)", now: at(index))
            _ = try await store.update(runID: run.id, now: at(10)) { change in try change.cancel() }
        }
        let before = try await store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") } ?? 0
        #expect(try await store.compactRuns(finishedBefore: at(11), limit: 10, now: at(20)) == 5)
        let (pages, free) = try await store.pool.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0, try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? -1)
        }
        #expect(free == 0, "freed pages left in the file: \(free)")
        #expect(pages < before, "the file did not shrink: \(before) → \(pages) pages")
    }

    @Test("an idempotency row keeps a SHA-256 of the body, and a row written before the upgrade is rewritten to its digest")
    func idempotencyRowsKeepDigests() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let oldBody = #"{"tasks":[{"command":"deploy","env":{"TOKEN":"s3cret"},"name":"a"}],"workflow":"w"}"#
        // A database as the release before digests left it: the whole body in `body`.
        do {
            let queue = try DatabaseQueue(path: path)
            try SQLiteSchema.migrator.migrate(queue, upTo: "v5-delivery-leases")
            try await queue.write { db in
                try db.execute(
                    sql: "INSERT INTO idempotency_keys (scope, key, body, run_id, created_at) VALUES ('open', 'k1', ?, 'run_1', 0)",
                    arguments: [oldBody])
            }
        }
        let store = try await SQLiteRunStore.open(path: path)
        let (run, event) = makeRun(tasks: [task("a")])
        let key = IdempotencyKey(token: nil, key: "k2", canonicalBody: #"{"env":{"TOKEN":"s3cret"}}"#)
        _ = try await store.createRun(run, event: event, idempotency: key)

        let stored = try await store.pool.read { db in
            try [String: String](
                uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT key, body_sha256 FROM idempotency_keys").map {
                    ($0["key"], $0["body_sha256"])
                })
        }
        #expect(stored["k1"] == IdempotencyKey.digest(oldBody))
        #expect(stored["k2"] == key.bodyDigest)
        #expect(stored.values.allSatisfy { $0.count == 64 && !$0.contains("s3cret") })
    }

    @Test("v13 rebuilds events with every row and seq, and never hands out a seq retention removed")
    func eventsRebuildKeepsSeq() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        // A database as the release before runners left it: events 1…3, then 3 removed by retention.
        do {
            let queue = try DatabaseQueue(path: path)
            try SQLiteSchema.migrator.migrate(queue, upTo: "v12-retention")
            try await queue.write { db in
                for seq in 1...3 {
                    try db.execute(
                        sql: """
                            INSERT INTO events (seq, id, run_id, run_seq, task_id, type, status, timestamp)
                            VALUES (?, ?, 'run_1', ?, NULL, 'run.created', 'queued', 0)
                            """,
                        arguments: [seq, "evt_\(seq)", seq])
                }
                try db.execute(sql: "DELETE FROM events WHERE seq = 3")
            }
        }
        let store = try await SQLiteRunStore.open(path: path)
        let kept = try await store.events(runID: nil, after: 0, limit: 10)
        #expect(kept.map(\.seq) == [1, 2])
        #expect(kept.map(\.draft.id) == ["evt_1", "evt_2"])
        #expect(kept.map(\.runSeq) == [1, 2])
        let touch = try await store.recordContact(RunnerContact(name: "r1"), now: at(1))
        #expect(touch.events.map(\.seq) == [4])
    }
}
