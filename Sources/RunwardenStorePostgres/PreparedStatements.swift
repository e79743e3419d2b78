import PostgresNIO
import Synchronization

/// Which statements run prepared: each connection parses and plans a statement once and then
/// only binds and executes it.
///
/// A profile of PostgreSQL under one-task lifecycles (`perf`, and `pg_stat_statements` with
/// `track_planning`) spent about 40 % of its CPU parsing and planning the same few dozen
/// statements again for every change. postgres-nio prepares a statement on a connection the
/// first time it is used by name and reuses it after; this registry names each distinct
/// statement text once for the whole process, so every connection uses the same names.
///
/// Only a bounded set of texts is named — at most `capacity`, none longer than
/// `maximumLength` — because a connection keeps every statement it prepared (postgres-nio's
/// cache and PostgreSQL's session both grow with each name): the texts that vary with a
/// change's size (many rows in one `VALUES` list) come later and are sent unnamed.
final class PreparedStatements: Sendable {
    static let capacity = 160
    static let maximumLength = 6_000

    private struct State {
        var names: [String: String] = [:]
        /// Names that failed while being prepared on a connection (`Failure`): postgres-nio
        /// answers such a name with the same error forever after, so that connection sends
        /// the text unnamed instead.
        var failed: Set<Failure> = []
    }

    private struct Failure: Hashable {
        let connection: Int
        let name: String
    }

    private let state = Mutex(State())

    /// The name `sql` runs under on `connection`, or nil to send it unnamed.
    func name(for sql: String, connection: Int) -> String? {
        state.withLock { state in
            let name: String
            if let known = state.names[sql] {
                name = known
            } else {
                guard state.names.count < Self.capacity, sql.utf8.count <= Self.maximumLength, Self.isPlanned(sql) else { return nil }
                name = "rw\(state.names.count + 1)"
                state.names[sql] = name
            }
            return state.failed.contains(Failure(connection: connection, name: name)) ? nil : name
        }
    }

    /// Statements PostgreSQL plans (transaction control and the like gain nothing by a name).
    private static func isPlanned(_ sql: String) -> Bool {
        let head = sql.prefix(8).uppercased()
        return ["SELECT", "WITH", "INSERT", "UPDATE", "DELETE"].contains { head.hasPrefix($0) }
    }

    /// Notes that `name` failed on `connection` with `error`. A statement that failed while it
    /// ran (a deadlock, a unique violation, a cancel) stays prepared and usable; one that may
    /// have failed while it was prepared (a syntax or type error, an aborted transaction, a
    /// broken connection) is sent unnamed on that connection from now on.
    func failed(_ name: String, connection: Int, error: any Error) {
        if let error = error as? PSQLError, error.code == .server,
            let sqlState = error.serverInfo?[.sqlState], ["23", "40", "55", "57"].contains(String(sqlState.prefix(2)))
        {
            return
        }
        state.withLock { _ = $0.failed.insert(Failure(connection: connection, name: name)) }
    }
}

/// A statement run by name: postgres-nio prepares it on the connection at first use, then
/// only binds and executes it. postgres-nio takes a prepared statement's name and text from
/// static properties of its type, so they are set for the one call (`$current`); they are read
/// while the call starts, in the calling task.
struct NamedStatement: PostgresPreparedStatement {
    typealias Row = PostgresRow

    @TaskLocal static var current = (name: "", sql: "")
    static var name: String { current.name }
    static var sql: String { current.sql }

    let binds: PostgresBindings

    func makeBindings() throws -> PostgresBindings { binds }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}
