import PostgresNIO
import RunwardenCore
import RunwardenStore

/// The runner registry on PostgreSQL (SPEC §8). Every change of a runner's recorded status
/// first locks its row (`FOR UPDATE`) and reads the status it starts from, so nodes that race
/// record — and announce — each change once. A runner row is locked alone, before any `seq`
/// lock, so these never wait in a circle with a run's changes.
extension PostgresRunStore {
    public func recordContact(_ contact: RunnerContact, now: Timestamp) async throws -> RunnerTouch {
        let labels = try contact.labels.map { try JSONColumn.encode($0) }
        return try await transaction(.write) { tx in
            // The usual contact: a runner already online. One statement, no event.
            if let draining = try await Self.updateContact(contact, labels: labels, now: now, onlyIfOnline: true, tx) {
                return RunnerTouch(draining: draining, events: [])
            }
            // A new runner is inserted `online`; a second node inserting the same name at once
            // waits for the first to commit and then finds its row.
            let inserted = try await tx.rows(
                """
                INSERT INTO runners (name, labels, version, hostname, concurrency, first_seen_at, last_seen_at, draining, status)
                VALUES (\(contact.name), \(labels ?? "[]"), \(contact.version), \(contact.hostname), \(contact.concurrency),
                        \(now.milliseconds), \(now.milliseconds), false, 'online')
                ON CONFLICT (name) DO NOTHING
                RETURNING draining
                """)
            var previous: RunnerStatus?
            var draining = false
            if inserted.isEmpty {
                guard let row = try await tx.rows("SELECT status FROM runners WHERE name = \(contact.name) FOR UPDATE").first else {
                    throw StoreError.unavailable("runner \(contact.name) vanished while its contact was recorded")
                }
                previous = RunnerStatus(rawValue: try row.decode(String.self)) ?? .offline
                draining = try await Self.updateContact(contact, labels: labels, now: now, onlyIfOnline: false, tx) ?? false
            }
            let draft = RunnerRules.event(runner: contact.name, from: previous, to: .online, id: Identifier.make(.evt, at: now), now: now)
            let events = try await Self.commitRunnerEvents(draft.map { [$0] } ?? [], now: now, tx)
            return RunnerTouch(draining: draining, events: events)
        }
    }

    /// Writes a contact into the runner's row and makes it `online` — with `onlyIfOnline`, only
    /// if it already is. Returns `draining`; nil when no row was changed.
    private static func updateContact(
        _ contact: RunnerContact, labels: String?, now: Timestamp, onlyIfOnline: Bool, _ tx: PostgresTransaction
    ) async throws -> Bool? {
        try await tx.rows(
            """
            UPDATE runners SET labels = COALESCE(\(labels), labels), version = COALESCE(\(contact.version), version),
                hostname = COALESCE(\(contact.hostname), hostname), concurrency = COALESCE(\(contact.concurrency), concurrency),
                last_seen_at = GREATEST(last_seen_at, \(now.milliseconds)), status = 'online'
            WHERE name = \(contact.name) AND (status = 'online' OR NOT \(onlyIfOnline))
            RETURNING draining
            """
        ).first?.decode(Bool.self)
    }

    public func recordGoodbye(runner name: String, now: Timestamp) async throws -> RunnerTouch? {
        try await transaction(.write) { tx -> RunnerTouch? in
            guard let row = try await tx.rows("SELECT status, draining FROM runners WHERE name = \(name) FOR UPDATE").first else {
                return nil
            }
            let (status, draining) = try row.decode((String, Bool).self)
            tx.notify(.runners)
            try await tx.execute(
                "UPDATE runners SET status = 'offline', last_seen_at = GREATEST(last_seen_at, \(now.milliseconds)) WHERE name = \(name)")
            let draft = RunnerRules.event(
                runner: name, from: RunnerStatus(rawValue: status) ?? .offline, to: .offline, id: Identifier.make(.evt, at: now), now: now)
            return RunnerTouch(draining: draining, events: try await Self.commitRunnerEvents(draft.map { [$0] } ?? [], now: now, tx))
        }
    }

    public func silentRunners(since cutoff: Timestamp, limit: Int) async throws -> [String] {
        try await transaction(.read) { tx in
            try await tx.rows(
                """
                SELECT name FROM runners WHERE status = 'online' AND last_seen_at < \(cutoff.milliseconds)
                ORDER BY last_seen_at LIMIT \(limit)
                """
            ).map { try $0.decode(String.self) }
        }
    }

    public func recordSilence(runner name: String, cutoff: Timestamp, now: Timestamp) async throws -> Event? {
        try await transaction(.write) { tx -> Event? in
            // READ COMMITTED re-checks the condition on the row it waited for: a node that lost
            // the race (or a contact that came meanwhile) finds nothing to change.
            guard
                try await tx.rows(
                    """
                    SELECT 1 FROM runners WHERE name = \(name) AND status = 'online' AND last_seen_at < \(cutoff.milliseconds)
                    FOR UPDATE
                    """
                ).first != nil
            else { return nil }
            tx.notify(.runners)
            var binds = PostgresBindings()
            binds.append(name)
            let holds = try await tx.rows(PostgresQuery(unsafeSQL: RunnerSQL.holdsTasks("$1"), binds: binds)).first?.decode(Bool.self) ?? false
            let status = RunnerRules.goneStatus(holdsTasks: holds)
            try await tx.execute("UPDATE runners SET status = \(status.rawValue) WHERE name = \(name)")
            let draft = RunnerRules.event(runner: name, from: .online, to: status, id: Identifier.make(.evt, at: now), now: now)
            return try await Self.commitRunnerEvents(draft.map { [$0] } ?? [], now: now, tx).first
        }
    }

    public func runner(name: String) async throws -> Runner? {
        try await transaction(.read) { tx in
            guard let row = try await tx.rows("SELECT \(unescaped: Self.runnerColumns) FROM runners WHERE name = \(name)").first else {
                return nil
            }
            return try await Self.runner(row, tx)
        }
    }

    public func runners(limit: Int, after: String?) async throws -> (items: [Runner], nextCursor: String?) {
        try await transaction(.read) { tx in
            let rows = try await tx.rows(
                "SELECT \(unescaped: Self.runnerColumns) FROM runners WHERE name > \(after ?? "") ORDER BY name LIMIT \(limit + 1)")
            var items: [Runner] = []
            for row in rows.prefix(limit) { items.append(try await Self.runner(row, tx)) }
            return (items, rows.count > limit ? items.last?.name : nil)
        }
    }

    public func setDraining(_ draining: Bool, runner name: String) async throws -> Runner? {
        try await transaction(.write) { tx -> Runner? in
            guard
                let row = try await tx.rows(
                    "UPDATE runners SET draining = \(draining) WHERE name = \(name) RETURNING \(unescaped: Self.runnerColumns)"
                ).first
            else { return nil }
            tx.notify(.runners)
            return try await Self.runner(row, tx)
        }
    }

    public func runnerCounts() async throws -> [RunnerStatus: Int] {
        try await transaction(.read) { tx in
            var counts: [RunnerStatus: Int] = [:]
            for row in try await tx.rows("SELECT status, count(*) FROM runners GROUP BY status") {
                let (status, count) = try row.decode((String, Int).self)
                if let status = RunnerStatus(rawValue: status) { counts[status] = count }
            }
            return counts
        }
    }

    static let runnerColumns = "name, labels, version, hostname, concurrency, first_seen_at, last_seen_at, draining, status"

    private static func runner(_ row: PostgresRow, _ tx: PostgresTransaction) async throws -> Runner {
        let (name, labels, version, hostname, concurrency, firstSeen, lastSeen, draining, status) = try row.decode(
            (String, String, String?, String?, Int?, Int64, Int64, Bool, String).self)
        var binds = PostgresBindings()
        binds.append(name)
        let running = try await tx.rows(PostgresQuery(unsafeSQL: RunnerSQL.running("$1"), binds: binds)).map { try $0.decode(String.self) }
        return Runner(
            name: name, labels: try JSONColumn.decode([String].self, labels), version: version, hostname: hostname,
            concurrency: concurrency, firstSeenAt: Timestamp(milliseconds: firstSeen), lastSeenAt: Timestamp(milliseconds: lastSeen),
            draining: draining, recordedStatus: RunnerStatus(rawValue: status) ?? .offline, running: running)
    }
}
