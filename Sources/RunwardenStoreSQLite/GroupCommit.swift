import GRDB
import RunwardenStore
import Synchronization

/// Group commit: writes that arrive while a write transaction is committing wait, then commit
/// together in the next transaction — one fsync (`synchronous = FULL`) for all of them instead
/// of one each. Every write still runs in its own savepoint, so one that throws (a refused
/// transition, a validation error) rolls back only its own changes; and every caller hears back
/// only after the transaction holding its write has committed, so nothing is acknowledged
/// before it is durable.
///
/// A database error (disk full, I/O error, a busy database) aborts the whole transaction; the
/// writes of that batch are then retried one transaction each, so only the write that meets
/// the error again fails with it.
///
/// One loop commits the batches: a task this object starts and `close()` awaits, so a shutdown
/// returns only after every write queued before it has committed and been answered. A write
/// that arrives after `close()` began fails at once with `StoreError.unavailable`.
final class GroupCommit: Sendable {
    /// One write: `execute` runs it inside the batch's transaction and keeps its outcome;
    /// `complete` hands the outcome (or the batch's failure) to the caller.
    fileprivate struct Job: Sendable {
        let execute: @Sendable (Database) throws -> Void
        let complete: @Sendable ((any Error)?) -> Void
    }

    fileprivate struct State {
        var queue: [Job] = []
        /// Set by `close()`; checked under the same lock as `queue`, so no job slips in after.
        var closed = false
        /// Jobs enqueued and not yet answered (for tests that wait for a write to be queued).
        var pending = 0
    }

    /// Bounds how long the last write of a batch waits behind the others.
    static let maxBatch = 64

    static let closedError = StoreError.unavailable("the SQLite store is closed: the server is shutting down")

    /// In a box of its own so the loop can hold it without holding `self` (see `deinit`).
    private let box = StateBox()
    /// Rung after each enqueue; the loop drains the whole queue per ring, so one buffered ring
    /// is enough. Finished by `close()`, which ends the loop once the queue is empty.
    private let doorbell: AsyncStream<Void>.Continuation
    private let loop: Task<Void, Never>

    /// `afterTransaction` runs when a transaction has ended (committed or not) and before any
    /// of its writers is answered: what a caller hears about is already published.
    init(pool: DatabasePool, afterTransaction: @escaping @Sendable () -> Void = {}) {
        let (rings, doorbell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.doorbell = doorbell
        let box = self.box
        loop = Task {
            for await _ in rings { await Self.drain(box, pool, afterTransaction) }
            await Self.drain(box, pool, afterTransaction)  // what was queued between the last ring and `close()`
        }
    }

    /// A committer nobody closed (a test's store) still ends its loop. Every `write` call holds
    /// `self` until it is answered, so none is queued by now.
    deinit { doorbell.finish() }

    var isClosed: Bool { box.state.withLock { $0.closed } }
    var pendingWrites: Int { box.state.withLock { $0.pending } }

    /// Refuses new writes, then waits until every queued write has committed and been answered.
    func close() async {
        box.state.withLock { $0.closed = true }
        doorbell.finish()
        await loop.value
    }

    func write<Value: Sendable>(_ body: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = Outcome<Value>()
            let box = self.box
            let job = Job(
                execute: { db in
                    do {
                        var value: Value?
                        try db.inSavepoint {
                            value = try body(db)
                            return .commit
                        }
                        outcome.set(.success(value!))
                    } catch let error as DatabaseError {
                        throw error  // the transaction itself is in doubt: abort the batch
                    } catch {
                        outcome.set(.failure(error))  // only this write's savepoint rolled back
                    }
                },
                complete: { batchFailure in
                    box.state.withLock { $0.pending -= 1 }
                    if let batchFailure {
                        continuation.resume(throwing: batchFailure)
                    } else {
                        continuation.resume(with: outcome.take())
                    }
                })
            let accepted = box.state.withLock { state in
                guard !state.closed else { return false }
                state.queue.append(job)
                state.pending += 1
                return true
            }
            if accepted { doorbell.yield() } else { continuation.resume(throwing: Self.closedError) }
        }
    }

    /// Commits batches until no write is waiting.
    private static func drain(_ box: StateBox, _ pool: DatabasePool, _ afterTransaction: @Sendable () -> Void) async {
        while true {
            let batch = box.state.withLock { state -> [Job] in
                let batch = Array(state.queue.prefix(maxBatch))
                state.queue.removeFirst(batch.count)
                return batch
            }
            if batch.isEmpty { return }
            do {
                try await pool.write { db in
                    for job in batch { try job.execute(db) }
                }
                afterTransaction()
                for job in batch { job.complete(nil) }
            } catch {
                afterTransaction()
                guard batch.count > 1 else {
                    batch[0].complete(error)
                    continue
                }
                for job in batch {
                    do {
                        try await pool.write { db in try job.execute(db) }
                        afterTransaction()
                        job.complete(nil)
                    } catch {
                        afterTransaction()
                        job.complete(error)
                    }
                }
            }
        }
    }
}

private final class StateBox: Sendable {
    let state = Mutex(GroupCommit.State())
}

/// The outcome of one write, set on the writer's queue and read after the commit.
private final class Outcome<Value: Sendable>: Sendable {
    private let result = Mutex<Result<Value, any Error>?>(nil)

    func set(_ value: Result<Value, any Error>) { result.withLock { $0 = value } }

    func take() -> Result<Value, any Error> {
        result.withLock { $0 } ?? .failure(GroupCommitError.noOutcome)
    }
}

enum GroupCommitError: Error { case noOutcome }
