import GRDB
import RunwardenStore

/// Every transaction goes through these two (writes grouped by `GroupCommit`), so that a database the process cannot use right
/// now — locked by another process past the busy timeout, disk full, I/O error, read-only —
/// surfaces as `StoreError.unavailable` (answered `503`) instead of an opaque failure. SQLite
/// rolls the transaction back in each case, so nothing half-written remains.
extension SQLiteRunStore {
    func writing<Value: Sendable>(_ body: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        do {
            return try await committer.write(body)
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
    }

    /// Reads run on the calling thread, not on a GRDB dispatch queue: a WAL reader never waits
    /// for the writer, and the hop to a queue and back cost more than most reads (a quarter of
    /// a `GET /v1/runs/{id}`). It cannot wait for a free connection either: the pool has
    /// more readers than the machine has cooperative threads, and every read comes here.
    func reading<Value: Sendable>(_ body: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        do {
            return try readHere(body)
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
    }

    /// GRDB's synchronous `read`: called from async code, `pool.read` resolves to the async
    /// overload, the one with the queue hop.
    private func readHere<Value>(_ body: (Database) throws -> Value) throws -> Value {
        try pool.read(body)
    }

    static func translate(_ error: DatabaseError) -> any Error {
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StoreError.unavailable("the SQLite database is locked by another process or connection")
        case .SQLITE_FULL:
            return StoreError.unavailable("the disk holding the SQLite database is full")
        case .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_PERM:
            return StoreError.unavailable("the SQLite database cannot be used: \(error.message ?? "\(error.resultCode)")")
        default:
            return error
        }
    }
}
