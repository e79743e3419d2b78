import Foundation
import GRDB
import RunwardenCore
import Logging
import ServiceLifecycle
import Testing

@testable import RunwardenStore
@testable import RunwardenStoreSQLite

/// Shutdown waits for the writes queued before it; a write after it fails at once.
@Suite("SQLite group commit shutdown", .timeLimit(.minutes(1)))
struct GroupCommitShutdownTests {
    @Test("close() answers every write queued before it, then refuses new ones at once")
    func closeAwaitsQueuedWrites() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let store = try await SQLiteRunStore.open(path: path)
        let queued = try await queueTwoWritesBehindHeldWriter(store)

        let closing = Task { await store.close() }
        try await until { store.committer.isClosed }
        try await expectRefusedAtOnce(store)
        #expect(store.committer.pendingWrites == 2, "closing must not drop or answer writes still waiting to commit")

        queued.hold.release()
        await closing.value
        #expect(store.committer.pendingWrites == 0, "close() returned before every queued write was answered")
        try await expectCommitted(queued.writes, in: path)
    }

    @Test("a ServiceGroup's graceful shutdown stops the store only after its queued writes committed")
    func gracefulShutdownAwaitsQueuedWrites() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let store = try await SQLiteRunStore.open(path: path)
        let group = ServiceGroup(services: [store], logger: .init(label: "group-commit-test"))
        let running = Task { try await group.run() }
        let queued = try await queueTwoWritesBehindHeldWriter(store)

        await group.triggerGracefulShutdown()
        try await until { store.committer.isClosed }
        try await expectRefusedAtOnce(store)

        queued.hold.release()
        try await running.value
        #expect(store.committer.pendingWrites == 0, "the group stopped before every queued write was answered")
        try await expectCommitted(queued.writes, in: path)
    }

    // MARK: - Helpers

    /// Two run creations waiting for the writer, which a `WriterHold` keeps busy.
    private func queueTwoWritesBehindHeldWriter(
        _ store: SQLiteRunStore
    ) async throws -> (hold: WriterHold, writes: [Task<Run, any Error>]) {
        let hold = await WriterHold.hold(store.pool)
        let writes = (0..<2).map { index in
            Task { try await create(store, [task("t\(index)")], workflow: "queued-\(index)") }
        }
        try await until { store.committer.pendingWrites == 2 }
        return (hold, writes)
    }

    private func expectRefusedAtOnce(_ store: SQLiteRunStore) async throws {
        // The writer is still held: a write that were queued would not be answered before the time limit.
        await #expect(throws: GroupCommit.closedError) { try await create(store, [task("late")], workflow: "late") }
    }

    /// Each write was answered with success, and its run is in the file for a new store to read.
    private func expectCommitted(_ writes: [Task<Run, any Error>], in path: String) async throws {
        let reopened = try await SQLiteRunStore.open(path: path)
        for write in writes {
            let run = try await write.value
            #expect(try await reopened.run(id: run.id)?.run.spec.workflow == run.spec.workflow)
        }
        #expect(try await reopened.runs(RunQuery(limit: 10)).runs.count == 2, "the refused write must not have been stored")
    }
}

/// Keeps the database's single writer busy until `release()`, so writes queue behind it.
final class WriterHold: Sendable {
    private let gate = DispatchSemaphore(value: 0)

    static func hold(_ pool: DatabasePool) async -> WriterHold {
        let hold = WriterHold()
        await withCheckedContinuation { (held: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                pool.writeWithoutTransaction { _ in
                    held.resume()
                    hold.gate.wait()
                }
            }
        }
        return hold
    }

    func release() { gate.signal() }
}

/// Polls `condition` until it holds (a state the test cannot be told of), failing after 10 s.
private func until(_ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition did not hold within 10 s", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}
