import Logging
import PostgresNIO

/// One open transaction on a leased connection. Every statement binds its values through
/// `PostgresQuery` interpolation.
///
/// It also collects the wake-up topics of what it changed (`notify`); they are sent with
/// `pg_notify` just before `COMMIT`, and PostgreSQL delivers them only if the commit succeeds,
/// so another node hears of a change exactly when it can read it.
final class PostgresTransaction {
    let connection: PostgresConnection
    let logger: Logger
    private var topics: [String] = []

    let prepared: PreparedStatements

    init(connection: PostgresConnection, logger: Logger, prepared: PreparedStatements) {
        self.connection = connection
        self.logger = logger
        self.prepared = prepared
    }

    /// Runs a statement and returns all its rows — prepared on this connection when
    /// `PreparedStatements` names its text.
    @discardableResult
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        guard let name = prepared.name(for: query.sql, connection: connection.id) else {
            return try await connection.query(query, logger: logger).collect()
        }
        do {
            return try await NamedStatement.$current.withValue((name, query.sql)) {
                var rows: [PostgresRow] = []
                for try await row in try await connection.execute(NamedStatement(binds: query.binds), logger: logger) {
                    rows.append(row)
                }
                return rows
            }
        } catch {
            prepared.failed(name, connection: connection.id, error: error)
            throw error
        }
    }

    /// Runs a statement whose rows (if any) are not needed.
    func execute(_ query: PostgresQuery) async throws {
        _ = try await rows(query)
    }

    /// Asks for `topic` to be announced when this transaction commits.
    func notify(_ topic: PostgresChangeTopic) {
        let payload = topic.payload
        if !topics.contains(payload) { topics.append(payload) }
    }

    /// The notifications asked for so far, handed to a statement of the caller's that sends
    /// them (`pg_notify` over the bound list); they are not sent again before the commit.
    func takeTopics() -> [String] {
        defer { topics = [] }
        return topics
    }

    /// Runs data-modifying `statements` (no `RETURNING`, no `WITH` of their own) as one
    /// statement that also sends the notifications asked for so far: one round trip for both.
    func executeAnnouncing(_ statements: [String], binds: PostgresBindings) async throws {
        var binds = binds
        binds.append(PostgresChangeTopic.channel)
        binds.append(topics)
        let ctes = statements.enumerated().map { "written\($0.offset) AS (\($0.element))" }.joined(separator: ", ")
        let sql = "WITH \(ctes) SELECT pg_notify($\(binds.count - 1), topic) FROM unnest($\(binds.count)::text[]) AS topic"
        // Constant text and `$n` markers only; every value is bound.
        try await execute(PostgresQuery(unsafeSQL: sql, binds: binds))
        topics = []
    }

    func sendNotifications() async throws {
        guard !topics.isEmpty else { return }
        try await execute(
            "SELECT pg_notify(\(PostgresChangeTopic.channel), topic) FROM unnest(\(topics)::text[]) AS topic")
    }
}

/// What a committed change may have made worth re-reading; announced to every node on the
/// `runwarden` channel (payloads `run:<id>`, `events`, `claims`, `deliveries`, `log:<task id>`,
/// `runners`).
public enum PostgresChangeTopic: Hashable, Sendable {
    /// The run's snapshot or events changed.
    case run(String)
    /// Events were appended.
    case events
    /// A task became claimable or a workspace lock was released.
    case claims
    /// Outbox rows were written or made due.
    case deliveries
    /// Output of one of the task's attempts arrived (SPEC §9).
    case log(taskID: String)
    /// A runner was drained or resumed, said goodbye or went silent.
    case runners

    /// The LISTEN/NOTIFY channel.
    public static let channel = "runwarden"

    public var payload: String {
        switch self {
        case .run(let id): "run:" + id
        case .events: "events"
        case .claims: "claims"
        case .deliveries: "deliveries"
        case .log(let taskID): "log:" + taskID
        case .runners: "runners"
        }
    }

    /// The topic a notification payload names; nil for anything else.
    public init?(payload: String) {
        switch payload {
        case "events": self = .events
        case "claims": self = .claims
        case "deliveries": self = .deliveries
        case "runners": self = .runners
        default:
            if payload.hasPrefix("log:"), payload.count > 4 {
                self = .log(taskID: String(payload.dropFirst(4)))
                return
            }
            guard payload.hasPrefix("run:"), payload.count > 4 else { return nil }
            self = .run(String(payload.dropFirst(4)))
        }
    }
}
