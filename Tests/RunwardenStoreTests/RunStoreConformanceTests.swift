import Foundation
import RunwardenCore
import RunwardenStore
import Testing

/// The behaviour every `RunStore` backend must share.
@Suite("RunStore conformance")
struct RunStoreConformanceTests {
    @Test("a created run reads back with its tasks, version 1 and one run.created event", arguments: Backend.all)
    func createdRunReadsBack(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("build"), task("test", needs: ["build"])])
        let record = try #require(try await store.run(id: run.id))
        #expect(record.run == run)
        #expect(record.run.state.version == 1)
        #expect(record.run.tasks.map(\.status) == [.queued, .pending])
        let events = try await store.events(runID: run.id, after: 0, limit: 10)
        #expect(events.map(\.draft.type) == ["run.created"])
        #expect(events.map(\.runSeq) == [1])
    }

    @Test("an unknown run or task id reads as nil", arguments: Backend.all)
    func unknownIDsAreNil(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        #expect(try await store.run(id: "run_nope") == nil)
        #expect(try await store.task(id: "task_nope") == nil)
        let updated = try await store.update(runID: "run_nope", now: t0) { _ in 1 }
        #expect(updated == nil)
    }

    @Test("everything committed is still there after the database is opened again", arguments: Backend.all)
    func survivesReopen(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        let run = try await create(store, [task("build", workspace: "repo")])
        let claimed = try #require(try await store.claim(runner: "host-a", labels: [], now: at(1)))
        _ = try await store.update(runID: run.id, now: at(2)) { change in
            try change.report(taskID: claimed.value.id, StatusReport(status: .succeeded, exitCode: 0), runner: nil)
        }
        let before = try #require(try await store.run(id: run.id))
        let eventsBefore = try await store.events(runID: nil, after: 0, limit: 100)

        let reopened = try await reopen()
        let after = try #require(try await reopened.run(id: run.id))
        #expect(after == before)
        #expect(after.run.status == .succeeded)
        #expect(try await reopened.events(runID: nil, after: 0, limit: 100) == eventsBefore)
        #expect(try await reopened.locks().isEmpty)
    }

    @Test("seq grows strictly across runs and run_seq counts each run from 1 without gaps", arguments: Backend.all)
    func eventNumbering(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let first = try await create(store, [task("a")])
        let second = try await create(store, [task("b")])
        for _ in 0..<2 {
            let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1)))
            _ = try await store.update(runID: claimed.value.runID, now: at(2)) { change in
                try change.report(taskID: claimed.value.id, StatusReport(status: .succeeded), runner: "r")
            }
        }
        let all = try await store.events(runID: nil, after: 0, limit: 100)
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.seq < $1.seq })
        for run in [first, second] {
            let events = try await store.events(runID: run.id, after: 0, limit: 100)
            #expect(events.map(\.runSeq) == Array(1...events.count))
            #expect(events.last?.draft.type == "run.succeeded")
        }
        let page = try await store.events(runID: nil, after: all[2].seq, limit: 2)
        #expect(page.map(\.seq) == Array(all[3...4].map(\.seq)))
    }

    @Test("a claim hands out the oldest claimable task whose labels the runner has", arguments: Backend.all)
    func claimOrderAndLabels(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let gpuRun = try await create(store, [task("train", labels: ["gpu"])], now: at(0))
        let plainRun = try await create(store, [task("lint")], now: at(1))
        let first = try #require(try await store.claim(runner: "cpu-host", labels: ["linux"], now: at(2)))
        #expect(first.value.runID == plainRun.id)
        #expect(try await store.claim(runner: "cpu-host", labels: ["linux"], now: at(3)) == nil)
        let second = try #require(try await store.claim(runner: "gpu-host", labels: ["gpu", "linux"], now: at(4)))
        #expect(second.value.runID == gpuRun.id)
        #expect(second.value.status == .dispatched)
        #expect(second.value.state.runner == "gpu-host")
        #expect(second.record.run.status == .running)
    }

    @Test("a claim repeated with its claim id gets the same task back, unchanged, while it is not started", arguments: Backend.all)
    func claimRepeatedWithItsID(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        try await create(store, [task("first", workspace: "repo")], now: at(0))
        try await create(store, [task("second")], now: at(1))
        let taken = try #require(try await store.claim(runner: "r1", labels: [], claimID: "c-1", now: at(2)))
        let again = try #require(try await store.claim(runner: "r1", labels: [], claimID: "c-1", now: at(3)))
        #expect(again.value == taken.value)
        #expect(again.events.isEmpty)
        #expect(again.record.run.state.version == taken.record.run.state.version)
        #expect(try await store.events(runID: taken.value.runID, after: 0, limit: 100).count == taken.record.run.state.lastRunSeq)
        // Another runner cannot take it over with the same id; a new id gets new work.
        let other = try #require(try await store.claim(runner: "r2", labels: [], claimID: "c-1", now: at(4)))
        #expect(other.value.name == "second")
        // Once started the task is no longer handed out again: that claim id gets new work.
        _ = try await store.update(runID: taken.value.runID, now: at(5)) { change in
            try change.report(taskID: taken.value.id, StatusReport(status: .running), runner: "r1")
        }
        #expect(try await store.claim(runner: "r1", labels: [], claimID: "c-1", now: at(6)) == nil)
    }

    @Test("concurrent changes commit independently: those whose body throws leave nothing behind, the rest all land", arguments: Backend.all)
    func concurrentChangesCommitIndependently(backend: Backend) async throws {
        struct Refused: Error {}
        let (store, _) = try await backend.makeStore()
        var runs: [Run] = []
        for index in 0..<24 { runs.append(try await create(store, [task("t\(index)")], now: at(index))) }
        let before = try await store.latestSeq()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, run) in runs.enumerated() {
                group.addTask {
                    do {
                        _ = try await store.update(runID: run.id, now: at(100)) { change in
                            try change.cancel()
                            if index.isMultiple(of: 2) { throw Refused() }  // after changing: must roll back
                        }
                        #expect(!index.isMultiple(of: 2))
                    } catch is Refused {
                        #expect(index.isMultiple(of: 2))
                    }
                }
            }
            try await group.waitForAll()
        }
        for (index, run) in runs.enumerated() {
            let stored = try #require(try await store.run(id: run.id)).run
            #expect(stored.status == (index.isMultiple(of: 2) ? .queued : .canceled), "run \(index)")
            #expect(stored.state.version == (index.isMultiple(of: 2) ? 1 : 2), "run \(index)")
        }
        let events = try await store.events(runID: nil, after: before, limit: 500)
        #expect(Set(events.map(\.draft.runID)) == Set(runs.enumerated().filter { !$0.offset.isMultiple(of: 2) }.map(\.element.id)))
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.seq < $1.seq })
    }

    @Test("a workspace is held by one task at a time and freed when that task ends", arguments: Backend.all)
    func workspaceLocks(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let first = try await create(store, [task("deploy-a", workspace: "repo")], now: at(0))
        try await create(store, [task("deploy-b", workspace: "repo")], now: at(1))
        let holder = try #require(try await store.claim(runner: "r1", labels: [], now: at(2)))
        #expect(holder.value.runID == first.id)
        #expect(try await store.claim(runner: "r2", labels: [], now: at(3)) == nil)
        let locks = try await store.locks()
        #expect(locks == [WorkspaceLock(workspace: "repo", taskID: holder.value.id, runID: first.id, runner: "r1", acquiredAt: at(2))])
        let newest = try #require(try await store.runs(RunQuery()).runs.first)
        let waiting = try #require(try await store.run(id: newest.id))
        #expect(waiting.lockHolders == ["repo": holder.value.id])

        _ = try await store.update(runID: first.id, now: at(4)) { change in
            try change.report(taskID: holder.value.id, StatusReport(status: .failed, exitCode: 1), runner: "r1")
        }
        #expect(try await store.locks().isEmpty)
        let next = try #require(try await store.claim(runner: "r2", labels: [], now: at(5)))
        #expect(next.value.name == "deploy-b")
    }

    @Test("a lock released by hand frees the workspace without a version step", arguments: Backend.all)
    func manualLockRelease(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        try await create(store, [task("a", workspace: "repo")])
        try await create(store, [task("b", workspace: "repo")], now: at(1))
        let holder = try #require(try await store.claim(runner: "r1", labels: [], now: at(2)))
        #expect(try await store.releaseLock(workspace: "elsewhere", now: at(3)) == nil)
        let released = try #require(try await store.releaseLock(workspace: "repo", now: at(3)))
        #expect(released.taskID == holder.value.id)
        let after = try #require(try await store.run(id: holder.value.runID))
        #expect(after.run.state.version == holder.record.run.state.version)
        #expect(after.run.tasks[0].state.holdsLock == false)
        let next = try #require(try await store.claim(runner: "r2", labels: [], now: at(4)))
        #expect(next.value.name == "b")
    }

    @Test("a heartbeat refreshes heartbeat_at only and names the tasks the runner must stop", arguments: Backend.all)
    func heartbeat(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("mine"), task("theirs"), task("done")])
        let mine = try #require(try await store.claim(runner: "r1", labels: [], now: at(1))).value
        let theirs = try #require(try await store.claim(runner: "r2", labels: [], now: at(1))).value
        let done = try #require(try await store.claim(runner: "r1", labels: [], now: at(1))).value
        _ = try await store.update(runID: run.id, now: at(2)) { change in
            try change.report(taskID: done.id, StatusReport(status: .succeeded), runner: "r1")
        }
        let version = try #require(try await store.run(id: run.id)).run.state.version
        let eventCount = try await store.events(runID: run.id, after: 0, limit: 100).count

        let stop = try await store.heartbeat(runner: "r1", taskIDs: [mine.id, theirs.id, done.id, "task_unknown"], now: at(9))
        #expect(Set(stop) == [theirs.id, done.id, "task_unknown"])
        let after = try #require(try await store.run(id: run.id)).run
        #expect(after.state.version == version)
        #expect(try await store.events(runID: run.id, after: 0, limit: 100).count == eventCount)
        #expect(after.tasks[0].state.heartbeatAt == at(9))
        #expect(after.tasks[1].state.heartbeatAt == at(1))
    }

    @Test("an error thrown inside an update commits nothing", arguments: Backend.all)
    func failedUpdateCommitsNothing(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("a")])
        _ = try await store.update(runID: run.id, now: at(1)) { change in try change.cancel() }
        let canceled = try #require(try await store.run(id: run.id))
        await #expect(throws: TransitionError.runTerminal(.canceled)) {
            _ = try await store.update(runID: run.id, now: at(2)) { change in try change.cancel() }
        }
        #expect(try await store.run(id: run.id) == canceled)
    }

    @Test("an idempotency key answers the first run for an equal body and refuses a different one", arguments: Backend.all)
    func idempotency(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let key = IdempotencyKey(token: "client-a", key: "deploy-42", canonicalBody: #"{"workflow":"deploy"}"#)
        let (first, firstEvent) = makeRun(tasks: [task("a")])
        guard case .created = try await store.createRun(first, event: firstEvent, idempotency: key) else {
            Issue.record("first create must create")
            return
        }
        let (second, secondEvent) = makeRun(tasks: [task("a")], now: at(1))
        guard case .replayed(let replayed) = try await store.createRun(second, event: secondEvent, idempotency: key) else {
            Issue.record("an equal body must replay")
            return
        }
        #expect(replayed.run.id == first.id)

        var other = key
        other.bodyDigest = IdempotencyKey.digest(#"{"workflow":"other"}"#)
        guard case .keyReused = try await store.createRun(second, event: secondEvent, idempotency: other) else {
            Issue.record("a different body must be refused")
            return
        }
        var otherScope = key
        otherScope.scope = "client-b"
        guard case .created = try await store.createRun(second, event: secondEvent, idempotency: otherScope) else {
            Issue.record("another client's key is its own")
            return
        }
        #expect(try await store.runs(RunQuery()).runs.count == 2)
    }

    @Test("run lists go newest first, filter by status and workflow, and page with a cursor", arguments: Backend.all)
    func listing(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        var created: [Run] = []
        for index in 0..<5 {
            created.append(try await create(store, [task("a")], workflow: index.isMultiple(of: 2) ? "even" : "odd", now: at(index)))
        }
        _ = try await store.update(runID: created[0].id, now: at(9)) { change in try change.cancel() }

        let firstPage = try await store.runs(RunQuery(limit: 2))
        #expect(firstPage.runs.map(\.id) == [created[4].id, created[3].id])
        let secondPage = try await store.runs(RunQuery(limit: 2, before: firstPage.nextCursor))
        #expect(secondPage.runs.map(\.id) == [created[2].id, created[1].id])
        let lastPage = try await store.runs(RunQuery(limit: 2, before: secondPage.nextCursor))
        #expect(lastPage.runs.map(\.id) == [created[0].id])
        #expect(lastPage.nextCursor == nil)

        #expect(try await store.runs(RunQuery(workflow: "odd")).runs.map(\.id) == [created[3].id, created[1].id])
        #expect(try await store.runs(RunQuery(status: .canceled)).runs.map(\.id) == [created[0].id])
    }

    @Test("concurrent claims hand each task to exactly one runner", arguments: Backend.all)
    func concurrentClaims(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        for index in 0..<20 { try await create(store, [task("t\(index)")], now: at(index)) }
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for runner in 0..<8 {
                group.addTask {
                    var mine: [String] = []
                    while let claim = try await store.claim(runner: "r\(runner)", labels: [], now: at(30)) {
                        mine.append(claim.value.id)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claimed.count == 20)
        #expect(Set(claimed).count == 20)
    }

    @Test("status counts follow every create, claim, report and cancel as it commits", arguments: Backend.all)
    func statusCountsFollowChanges(backend: Backend) async throws {
        let (store, reopen) = try await backend.makeStore()
        #expect(try await store.statusCounts() == StatusCounts(runs: [:], tasks: [:]))
        let finished = try await create(store, [task("build"), task("test", needs: ["build"])])
        let canceled = try await create(store, [task("a"), task("b")], now: at(1))
        _ = try await create(store, [task("c")], now: at(2))
        #expect(
            try await store.statusCounts()
                == StatusCounts(runs: ["queued": 3], tasks: ["queued": 4, "pending": 1]))

        let build = try #require(try await store.claim(runner: "r", labels: [], now: at(3)))
        #expect(build.value.runID == finished.id)
        _ = try await store.update(runID: finished.id, now: at(4)) { change in
            try change.report(taskID: build.value.id, StatusReport(status: .failed, exitCode: 1), runner: "r")
        }
        _ = try await store.update(runID: canceled.id, now: at(5)) { change in try change.cancel() }
        let expected = StatusCounts(
            runs: ["failed": 1, "canceled": 1, "queued": 1], tasks: ["failed": 1, "skipped": 1, "canceled": 2, "queued": 1])
        #expect(try await store.statusCounts() == expected)
        #expect(try await reopen().statusCounts() == expected)
    }
}
