import Logging
import PostgresNIO
import RunwardenStore
import Synchronization

/// Every operation runs through `transaction`, which leases a connection (giving up after
/// `connectionTimeout`), runs the body between BEGIN and COMMIT (ROLLBACK when it throws),
/// retries what PostgreSQL asks to retry, and turns "the database cannot be used right now"
/// into `StoreError.unavailable` (answered `503`). Errors thrown by the body itself — a
/// `TransitionError` from `Core` — are rethrown unchanged after the rollback.
extension PostgresRunStore {
    enum Access {
        /// Several statements that must see one snapshot: REPEATABLE READ, READ ONLY (never
        /// fails with a serialization error).
        case read
        /// READ COMMITTED; writers serialize on row locks (see `PostgresRunStore`).
        case write
        /// One read-only statement, which is its own snapshot: no BEGIN or COMMIT, one round trip.
        case statement
    }

    @discardableResult
    func transaction<Value: Sendable>(
        _ access: Access, timeout: Duration? = nil,
        _ body: @escaping @Sendable (PostgresTransaction) async throws -> Value
    ) async throws -> Value {
        var attempt = 1
        while true {
            do {
                return try await leased(timeout: timeout ?? connectionTimeout) { [logger, prepared] connection in
                    try await Self.run(access, on: connection, logger: logger, prepared: prepared, body)
                }
            } catch let error where attempt < 4 && Self.isTransient(error) {
                // Nothing was committed: a deadlock victim, or a pooled connection the server
                // had closed before BEGIN. A fresh try sees the winner's commit.
                logger.notice(
                    "retrying a PostgreSQL transaction", metadata: ["error": "\(Self.describe(error))", "attempt": "\(attempt)"])
                attempt += 1
                try await Task.sleep(for: .milliseconds(5 * attempt))
            } catch {
                throw translate(error)
            }
        }
    }

    /// BEGIN, body, COMMIT on one connection; ROLLBACK when the body throws.
    private static func run<Value: Sendable>(
        _ access: Access, on connection: PostgresConnection, logger: Logger, prepared: PreparedStatements,
        _ body: @Sendable (PostgresTransaction) async throws -> Value
    ) async throws -> Value {
        let tx = PostgresTransaction(connection: connection, logger: logger, prepared: prepared)
        if access == .statement {
            do {
                return try await body(tx)
            } catch let error as PSQLError where isConnectionFailure(error) {
                // It read nothing on a connection the server had closed: as a failed BEGIN, retried.
                throw BeginFailed(underlying: error)
            }
        }
        do {
            switch access {
            case .read: try await tx.execute("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            case .write: try await tx.execute("BEGIN")
            case .statement: break
            }
        } catch {
            throw BeginFailed(underlying: error)
        }
        let value: Value
        do {
            value = try await body(tx)
            try await tx.sendNotifications()
        } catch {
            do {
                try await tx.execute("ROLLBACK")
            } catch {
                // The connection is in an unknown state: never hand it out again.
                try? await connection.close()
            }
            throw error
        }
        try await tx.execute("COMMIT")
        return value
    }

    /// Runs `body` on a pooled connection; fails with `unavailable` when none can be had within
    /// `timeout` (the pool keeps retrying a database that is down for a minute before it gives up).
    private func leased<Value: Sendable>(
        timeout: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        let gate = LeaseGate()
        let place = url.displayName
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { [client] in
                do {
                    return try await client.withConnection { connection in
                        guard gate.enter() else { throw CancellationError() }
                        return try await body(connection)
                    }
                } catch where !gate.hasEntered {
                    // Never got a connection: the server is down, unreachable, refuses us, or
                    // the pool is shut down.
                    throw StoreError.unavailable("cannot connect to PostgreSQL at \(place): \(Self.describe(error))")
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                if gate.abandon() {
                    throw StoreError.unavailable("no connection to PostgreSQL at \(place) within \(timeout)")
                }
                return nil
            }
            while let result = try await group.next() {
                if let value = result {
                    group.cancelAll()
                    return value
                }
            }
            throw CancellationError()
        }
    }

    /// Deadlocks and serialization failures roll back everything; so does a failed BEGIN.
    static func isTransient(_ error: any Error) -> Bool {
        if let failed = error as? BeginFailed {
            guard let error = failed.underlying as? PSQLError else { return false }
            return Self.isConnectionFailure(error)
        }
        return ["40001", "40P01"].contains(sqlState(error))
    }

    static func sqlState(_ error: any Error) -> String? {
        guard let error = error as? PSQLError, error.code == .server else { return nil }
        return error.serverInfo?[.sqlState]
    }

    static func isConnectionFailure(_ error: PSQLError) -> Bool {
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed,
            .queryCancelled, .sslUnsupported, .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest,
            .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            true
        default:
            false
        }
    }

    /// `StoreError.unavailable` for a database that cannot be used right now; anything else
    /// (a `TransitionError`, a bug) unchanged.
    func translate(_ error: any Error) -> any Error {
        let place = url.displayName
        if let failed = error as? BeginFailed { return translate(failed.underlying) }
        guard let error = error as? PSQLError else { return error }
        if Self.isConnectionFailure(error) {
            return StoreError.unavailable("the connection to PostgreSQL at \(place) failed: \(Self.describe(error))")
        }
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return error }
        let message = error.serverInfo?[.message] ?? "error \(state)"
        switch state {
        case "42P01":
            return StoreError.unavailable("PostgreSQL at \(place) has no Runwarden schema yet (migrate() has not run): \(message)")
        case "40001", "40P01":
            return StoreError.unavailable("PostgreSQL at \(place) is too busy (\(message)); try again")
        case "25006":
            return StoreError.unavailable("PostgreSQL at \(place) is read-only (a standby?): \(message)")
        case "3D000":
            return StoreError.unavailable("PostgreSQL at \(place): \(message)")
        default:
            break
        }
        // 08 connection exception, 28 authorization, 53 insufficient resources (disk full,
        // too many connections), 57 operator intervention (shutdown), 58 system (I/O) error.
        if ["08", "28", "53", "57", "58"].contains(String(state.prefix(2))) {
            return StoreError.unavailable("PostgreSQL at \(place) cannot be used: \(message) (SQLSTATE \(state))")
        }
        return error
    }
}

extension PostgresRunStore {
    /// A short reason for a message: the error kind, the server's message and the underlying
    /// network error — never the query or its bound values.
    static func describe(_ error: any Error) -> String {
        if let failed = error as? BeginFailed { return describe(failed.underlying) }
        guard let error = error as? PSQLError else { return String(describing: error) }
        var parts = ["\(error.code)"]
        if let message = error.serverInfo?[.message] { parts.append(message) }
        if let underlying = error.underlying { parts.append(String(describing: underlying)) }
        return parts.joined(separator: ": ")
    }
}

/// BEGIN itself failed: nothing ran, so the transaction may be tried again.
struct BeginFailed: Error {
    var underlying: any Error
}

/// Decides the race between a connection lease and its timeout: whichever comes first wins,
/// so a body never starts after its caller was told `unavailable`.
final class LeaseGate: Sendable {
    private enum State { case waiting, entered, abandoned }
    private let state = Mutex(State.waiting)

    /// The lease arrived: true when the body may run.
    func enter() -> Bool {
        state.withLock { state in
            guard state == .waiting else { return false }
            state = .entered
            return true
        }
    }

    /// The timeout passed: true when the caller must be told `unavailable`.
    func abandon() -> Bool {
        state.withLock { state in
            guard state == .waiting else { return false }
            state = .abandoned
            return true
        }
    }

    var hasEntered: Bool { state.withLock { $0 == .entered } }
}
