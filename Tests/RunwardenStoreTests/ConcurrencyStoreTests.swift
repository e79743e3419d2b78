import Foundation
import GRDB
import RunwardenCore
import RunwardenStore
@testable import RunwardenStoreSQLite
import RunwardenTestSupport
import Testing

/// SPEC §10 "Concurrency": a key's slots are taken when a run is stored and given up in the
/// change that ends it, whatever ends it; the next run in line is admitted in that same
/// transaction — on every backend.
@Suite("Concurrency keys")
struct ConcurrencyStoreTests {
    static func keyed(
        _ name: String, key: String = "deploy-prod", limit: Int = 1, onConflict: ConcurrencyConflict = .queue, runTimeout: Int? = nil,
        tasks: [TaskSpec]? = nil
    ) -> RunDefinition {
        RunDefinition(
            run: RunSpec(
                workflow: name, timeoutSeconds: runTimeout, concurrency: ConcurrencySpec(key: key, limit: limit, onConflict: onConflict)),
            tasks: tasks ?? [task("\(name)-a"), task("\(name)-b", needs: ["\(name)-a"])])
    }

    static func store(_ definition: RunDefinition, in store: any RunStore, at now: Timestamp) async throws -> Committed<Void> {
        let (run, event) = Run.create(
            definition, id: Identifier.make(.run, at: now), taskIDs: definition.tasks.map { _ in Identifier.make(.task, at: now) },
            eventID: Identifier.make(.evt, at: now), now: now)
        guard case .created(let committed) = try await store.createRun(run, event: event, idempotency: nil) else {
            throw StoreTestError.unexpected("create did not create")
        }
        return committed
    }

    /// Claims the next task and reports it `status`, returning the report's commit.
    static func finishNext(_ store: any RunStore, _ status: TaskStatus, at now: Timestamp) async throws -> Committed<Bool>? {
        let claimed = try #require(try await store.claim(runner: "r1", labels: [], now: now))
        return try await store.update(runOfTask: claimed.value.id, dependents: true, now: now) { change in
            try change.report(taskID: claimed.value.id, StatusReport(status: status, exitCode: status == .failed ? 1 : 0), runner: "r1")
        }
    }

    @Test("a run past the limit waits with blocked_by and none of its tasks claimable", arguments: Backend.all)
    func pastTheLimitWaits(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let first = try await Self.store(Self.keyed("first"), in: store, at: at(0)).record.run
        let second = try await Self.store(Self.keyed("second"), in: store, at: at(1))

        #expect(first.state.concurrencySlot == .holding)
        #expect(second.record.run.state.concurrencySlot == .waiting)
        #expect(second.record.run.status == .queued)
        #expect(second.record.run.tasks.allSatisfy { $0.status == .pending })
        #expect(second.freesWork == false)
        let read = try #require(try await store.run(id: second.record.run.id))
        #expect(Snapshot.run(read.run, lockHolders: [:], concurrencyHolders: read.concurrencyHolders).blockedBy
            == RunBlockedBy(concurrency: "deploy-prod", heldBy: [first.id]))
        #expect(try await store.concurrencyHolders(key: "deploy-prod") == [first.id])

        let claimed = try #require(try await store.claim(runner: "r1", labels: [], now: at(2)))
        #expect(claimed.value.runID == first.id)
        #expect(try await store.claim(runner: "r2", labels: [], now: at(3)) == nil)  // `first-b` needs `first-a`; `second` waits
    }

    @Test("the oldest waiting run is admitted in the commit that ends the holder, with its task.queued events", arguments: Backend.all)
    func admittedWhenTheHolderEnds(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let first = try await Self.store(Self.keyed("first", tasks: [task("only")]), in: store, at: at(0)).record.run
        let second = try await Self.store(Self.keyed("second"), in: store, at: at(1)).record.run
        let third = try await Self.store(Self.keyed("third"), in: store, at: at(2)).record.run

        let ended = try #require(try await Self.finishNext(store, .succeeded, at: at(3)))
        #expect(ended.record.run.id == first.id)
        #expect(ended.record.run.status == .succeeded)
        #expect(ended.record.run.state.concurrencySlot == .released)
        let admitted = try #require(ended.others.first)
        #expect(ended.others.count == 1)
        #expect(admitted.record.run.id == second.id)
        #expect(admitted.record.run.state.concurrencySlot == .holding)
        #expect(admitted.freesWork)
        #expect(admitted.events.map(\.draft.type) == ["task.queued"])
        #expect(admitted.events.first?.draft.taskID == admitted.record.run.tasks.first?.id)

        let thirdNow = try #require(try await store.run(id: third.id))
        #expect(thirdNow.run.state.concurrencySlot == .waiting)
        #expect(thirdNow.concurrencyHolders == [second.id])
        let next = try #require(try await store.claim(runner: "r1", labels: [], now: at(4)))
        #expect(next.value.runID == second.id)
    }

    /// Every way a run ends gives its slot up in the ending change.
    enum End: String, CaseIterable, Sendable { case failed, canceled, runTimedOut, lostRunner }

    @Test("every kind of end admits the next run", arguments: Backend.all, End.allCases)
    func everyEndReleases(backend: Backend, end: End) async throws {
        let (store, _) = try await backend.makeStore()
        let first = try await Self.store(Self.keyed("first", runTimeout: 60, tasks: [task("only")]), in: store, at: at(0)).record.run
        let second = try await Self.store(Self.keyed("second"), in: store, at: at(1)).record.run
        let claimed = try #require(try await store.claim(runner: "r1", labels: [], now: at(2)))
        let ended: Committed<Void>?
        switch end {
        case .failed:
            ended = try await store.update(runOfTask: claimed.value.id, dependents: true, now: at(3)) { change in
                _ = try change.report(taskID: claimed.value.id, StatusReport(status: .failed, exitCode: 1), runner: "r1")
            }
        case .canceled:
            // Canceling while its task runs: `canceling` keeps the slot until the task ends.
            let canceling = try await store.update(runID: first.id, now: at(3)) { change in try change.cancel() }
            #expect(canceling?.record.run.status == .canceling)
            #expect(canceling?.others.isEmpty == true)
            ended = try await store.update(runOfTask: claimed.value.id, dependents: true, now: at(4)) { change in
                _ = try change.report(taskID: claimed.value.id, StatusReport(status: .canceled), runner: "r1")
            }
        case .runTimedOut:
            ended = try await store.update(runID: first.id, now: at(61)) { change in change.runTimedOut() }
        case .lostRunner:
            ended = try await store.update(runID: first.id, scope: .task(claimed.value.id, dependents: true), now: at(300)) { change in
                change.leaseExpired(taskID: claimed.value.id)
            }
        }
        let committed = try #require(ended)
        #expect(committed.record.run.status.isTerminal)
        #expect(committed.others.map(\.record.run.id) == [second.id])
        let admitted = try #require(try await store.run(id: second.id))
        #expect(admitted.run.state.concurrencySlot == .holding)
        #expect(admitted.run.tasks.first?.status == .queued)
    }

    @Test("a run canceled while it waits leaves the line and admits nobody early", arguments: Backend.all)
    func waitingRunCanceled(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let first = try await Self.store(Self.keyed("first"), in: store, at: at(0)).record.run
        let second = try await Self.store(Self.keyed("second"), in: store, at: at(1)).record.run
        let third = try await Self.store(Self.keyed("third"), in: store, at: at(2)).record.run
        let canceled = try #require(try await store.update(runID: second.id, now: at(3)) { change in try change.cancel() })
        #expect(canceled.record.run.status == .canceled)
        #expect(canceled.others.isEmpty)  // `first` still holds the one slot
        #expect(try await store.run(id: third.id)?.concurrencyHolders == [first.id])
    }

    @Test("limit 2 lets two runs hold the key at once", arguments: Backend.all)
    func limitTwo(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let runs = try await [0, 1, 2].asyncMap { index in
            try await Self.store(Self.keyed("run\(index)", limit: 2), in: store, at: at(index)).record.run
        }
        #expect(runs.map(\.state.concurrencySlot) == [.holding, .holding, .waiting])
        #expect(try await store.run(id: runs[2].id)?.concurrencyHolders == [runs[0].id, runs[1].id])
    }

    @Test("cancel_pending cancels the older runs that have not started, not a running one", arguments: Backend.all)
    func cancelPending(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let running = try await Self.store(Self.keyed("running"), in: store, at: at(0)).record.run
        _ = try #require(try await store.claim(runner: "r1", labels: [], now: at(1)))
        let waiting = try await Self.store(Self.keyed("waiting"), in: store, at: at(2)).record.run
        let newest = try await Self.store(Self.keyed("newest", onConflict: .cancelPending), in: store, at: at(3))

        #expect(newest.others.map(\.record.run.id) == [waiting.id])
        #expect(try await store.run(id: waiting.id)?.run.status == .canceled)
        #expect(try await store.run(id: running.id)?.run.status == .running)
        #expect(newest.record.run.state.concurrencySlot == .waiting)
        #expect(newest.record.concurrencyHolders == [running.id])
    }

    @Test("cancel_pending lets the new run take the slot of an older run that never started", arguments: Backend.all)
    func cancelPendingFreesTheSlot(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let older = try await Self.store(Self.keyed("older"), in: store, at: at(0)).record.run
        let newest = try await Self.store(Self.keyed("newest", onConflict: .cancelPending), in: store, at: at(1))
        #expect(try await store.run(id: older.id)?.run.status == .canceled)
        #expect(newest.record.run.state.concurrencySlot == .holding)
        #expect(newest.freesWork)
        #expect(try await store.claim(runner: "r1", labels: [], now: at(2))?.value.runID == newest.record.run.id)
    }

    @Test("cancel_running cancels a running holder; the new run is admitted when it has ended", arguments: Backend.all)
    func cancelRunning(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let running = try await Self.store(Self.keyed("running", tasks: [task("only")]), in: store, at: at(0)).record.run
        let claimed = try #require(try await store.claim(runner: "r1", labels: [], now: at(1)))
        let newest = try await Self.store(Self.keyed("newest", onConflict: .cancelRunning), in: store, at: at(2))

        #expect(newest.others.map(\.record.run.id) == [running.id])
        #expect(newest.others.first?.record.run.status == .canceling)
        #expect(newest.record.run.state.concurrencySlot == .waiting)  // until the canceled task has stopped
        let stopped = try #require(
            try await store.update(runOfTask: claimed.value.id, dependents: true, now: at(3)) { change in
                _ = try change.report(taskID: claimed.value.id, StatusReport(status: .canceled), runner: "r1")
            })
        #expect(stopped.record.run.status == .canceled)
        #expect(stopped.others.map(\.record.run.id) == [newest.record.run.id])
        #expect(try await store.claim(runner: "r1", labels: [], now: at(4))?.value.runID == newest.record.run.id)
    }

    @Test("runs of other keys and runs without a key are not held back", arguments: Backend.all)
    func otherKeysUnaffected(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        _ = try await Self.store(Self.keyed("prod"), in: store, at: at(0))
        let staging = try await Self.store(Self.keyed("staging", key: "deploy-staging"), in: store, at: at(1))
        let plain = try await create(store, [task("plain")], now: at(2))
        #expect(staging.record.run.state.concurrencySlot == .holding)
        #expect(plain.state.concurrencySlot == nil)
    }

    @Test("webhooks tell the story the snapshot does: run.created carries blocked_by, admission a task.queued without it", arguments: Backend.all)
    func webhookPayloads(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        try await store.createWebhook(webhook("wh_A", events: ["run.created", "task.queued"]))
        let first = try await Self.store(Self.keyed("first", tasks: [task("only")]), in: store, at: at(0)).record.run
        let second = try await Self.store(Self.keyed("second", tasks: [task("only")]), in: store, at: at(1)).record.run
        _ = try await Self.finishNext(store, .succeeded, at: at(2))

        let payloads = try await store.deliveries(webhookID: "wh_A", limit: 10, before: nil).items
            .filter { $0.runID == second.id }.sorted { $0.eventSeq < $1.eventSeq }.map { try JSONValue.parse($0.payload) }
        #expect(payloads.map { $0["type"] } == [.string("run.created"), .string("task.queued")])
        #expect(payloads.first?["run"]?["blocked_by"]?["held_by"] == .array([.string(first.id)]))
        #expect(payloads.last?["run"]?["blocked_by"] == .null)
        #expect(payloads.last?["task"]?["status"] == .string("queued"))
    }

    @Test("the line survives the database being opened again (a slot is data, not memory)", arguments: Backend.all)
    func survivesReopen(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        _ = try await Self.store(Self.keyed("first", tasks: [task("only")]), in: store, at: at(0))
        let second = try await Self.store(Self.keyed("second", tasks: [task("only")]), in: store, at: at(1)).record.run
        let reopened = try await reopen()
        #expect(try await reopened.run(id: second.id)?.run.state.concurrencySlot == .waiting)
        let ended = try #require(try await Self.finishNext(reopened, .succeeded, at: at(2)))
        #expect(ended.others.map(\.record.run.id) == [second.id])
    }
}

extension Array {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

/// Admission reads the key's line through its index, never the runs table.
@Suite("Concurrency keys on SQLite")
struct SQLiteConcurrencyPlanTests {
    @Test("the line's head and holders are read from the key's index without a sort")
    func lineUsesTheIndex() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let store = try await SQLiteRunStore.open(path: path)
        for sql in [ConcurrencySQL.oldestWaiting("?"), ConcurrencySQL.holders("?")] {
            let plan = try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: ["deploy-prod"]).map { $0["detail"] as String }
            }
            #expect(plan.contains { $0.contains("runs_by_concurrency") }, "\(plan)")
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
        }
    }
}

/// Two PostgreSQL nodes creating runs of one key at the same moment hand out its slot once.
@Suite("Concurrency keys on two PostgreSQL nodes")
struct PostgresConcurrencyRaceTests {
    @Test("twelve runs of one key created at once on two nodes: one holds the slot, eleven wait in line")
    func raceForTheSlot() async throws {
        let url = try await PostgresTestCluster.database()
        async let first = openPostgresStore(url: url)
        async let second = openPostgresStore(url: url)
        let nodes: [any RunStore] = try await [first, second]
        let slots = try await withThrowingTaskGroup(of: ConcurrencySlot?.self) { group in
            for index in 0..<12 {
                group.addTask {
                    try await ConcurrencyStoreTests.store(ConcurrencyStoreTests.keyed("race\(index)"), in: nodes[index % 2], at: at(index))
                        .record.run.state.concurrencySlot
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(slots.count { $0 == .holding } == 1, "\(slots)")
        #expect(slots.count { $0 == .waiting } == 11, "\(slots)")
        #expect(try await nodes[1].concurrencyHolders(key: "deploy-prod").count == 1)
    }
}
