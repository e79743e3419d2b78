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

    func reading<Value: Sendable>(_ body: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        do {
            return try await pool.read(body)
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
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
