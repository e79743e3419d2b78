import GRDB
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
final class GroupCommit: Sendable {
    /// One write: `execute` runs it inside the batch's transaction and keeps its outcome;
    /// `complete` hands the outcome (or the batch's failure) to the caller.
    private struct Job: Sendable {
        let execute: @Sendable (Database) throws -> Void
        let complete: @Sendable ((any Error)?) -> Void
    }

    /// Bounds how long the last write of a batch waits behind the others.
    static let maxBatch = 64

    private let pool: DatabasePool
    private let state = Mutex<(queue: [Job], draining: Bool)>(([], false))

    init(pool: DatabasePool) { self.pool = pool }

    func write<Value: Sendable>(_ body: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = Outcome<Value>()
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
                    if let batchFailure {
                        continuation.resume(throwing: batchFailure)
                    } else {
                        continuation.resume(with: outcome.take())
                    }
                })
            enqueue(job)
        }
    }

    private func enqueue(_ job: Job) {
        let startDraining = state.withLock { state in
            state.queue.append(job)
            if state.draining { return false }
            state.draining = true
            return true
        }
        if startDraining { Task { await drain() } }
    }

    /// Commits batches until no write is waiting.
    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Job] in
                let batch = Array(state.queue.prefix(Self.maxBatch))
                state.queue.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                try await pool.write { db in
                    for job in batch { try job.execute(db) }
                }
                for job in batch { job.complete(nil) }
            } catch {
                guard batch.count > 1 else {
                    batch[0].complete(error)
                    continue
                }
                for job in batch {
                    do {
                        try await pool.write { db in try job.execute(db) }
                        job.complete(nil)
                    } catch {
                        job.complete(error)
                    }
                }
            }
        }
    }
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
