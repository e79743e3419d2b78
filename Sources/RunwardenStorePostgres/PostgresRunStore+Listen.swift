import Logging
import PostgresNIO

/// Cross-node wake-ups: every committing transaction that changed something sends
/// `pg_notify('runwarden', topic)` (see `PostgresTransaction.notify`); `listen` hears them all.
extension PostgresRunStore {
    /// LISTENs on the `runwarden` channel on a dedicated connection (outside the pool) and calls
    /// `onTopic` with each notification's payload — `run:<id>`, `events`, `claims` or
    /// `deliveries` (see `PostgresChangeTopic`) — one at a time, until the calling task is
    /// cancelled; then it returns.
    ///
    /// A dropped connection is reopened with backoff (100 ms doubling to 5 s); a connection
    /// that died silently is noticed by a keep-alive query every 15 s. Each time listening
    /// (re)starts, `onTopic` is first called with `events`, `claims`, `deliveries` and `runners`, since
    /// notifications sent while nobody listened are lost: waiters on those topics re-check.
    /// (`run:<id>` notifications missed then cannot be replayed; a long-poll on a run still
    /// ends at its own timeout.) Throws only when the URL's TLS settings cannot be set up.
    public func listen(onTopic: @escaping @Sendable (String) async -> Void) async throws {
        let configuration = try url.connectionConfiguration()
        let logger = self.logger
        let place = url.displayName
        var backoff = Duration.milliseconds(100)
        var connectionID = 0
        while !Task.isCancelled {
            connectionID += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: connectionID, logger: logger)
                do {
                    try await connection.listen(on: PostgresChangeTopic.channel) { notifications in
                        logger.debug("listening for changes", metadata: ["database": "\(place)"])
                        backoff = .milliseconds(100)
                        for topic in [PostgresChangeTopic.events, .claims, .deliveries, .runners] { await onTopic(topic.payload) }
                        try await Self.consume(notifications, on: connection, logger: logger, onTopic: onTopic)
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if Task.isCancelled { return }
                logger.warning(
                    "the LISTEN connection to PostgreSQL was lost; reconnecting",
                    metadata: ["database": "\(place)", "error": "\(Self.describe(error))", "retry_in": "\(backoff)"])
            }
            guard (try? await Task.sleep(for: backoff)) != nil else { return }
            backoff = min(backoff * 2, .seconds(5))
        }
    }

    /// Hands each notification to `onTopic` while a keep-alive query checks the connection;
    /// throws when either stops.
    private static func consume(
        _ notifications: PostgresNotificationSequence, on connection: PostgresConnection, logger: Logger,
        onTopic: @escaping @Sendable (String) async -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await notification in notifications { await onTopic(notification.payload) }
                throw ListenStopped(reason: "the notification stream ended")
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: .seconds(15))
                    try await probe(connection, logger: logger, timeout: .seconds(10))
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// `SELECT 1` on the connection; closes it (failing the query) when no answer comes in time.
    private static func probe(_ connection: PostgresConnection, logger: Logger, timeout: Duration) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = try await connection.query("SELECT 1", logger: logger).collect()
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                try? await connection.close()
                return false
            }
            let answered = try await group.next() ?? false
            group.cancelAll()
            if !answered { throw ListenStopped(reason: "no answer to a keep-alive query within \(timeout)") }
        }
    }
}

struct ListenStopped: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}
