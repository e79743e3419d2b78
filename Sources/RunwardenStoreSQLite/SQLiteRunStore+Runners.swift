import Foundation
import GRDB
import RunwardenCore
import RunwardenStore

/// The runner registry on SQLite (SPEC §8). One writer: a status read and its change in one
/// write transaction cannot be overtaken.
extension SQLiteRunStore {
    public func recordContact(_ contact: RunnerContact, now: Timestamp) async throws -> RunnerTouch {
        try await writing { db in
            let labels = try contact.labels.map { try JSONColumn.encode($0) }
            // The usual contact: a runner already online. No event.
            if try Self.updateContact(contact, labels: labels, now: now, onlyIfOnline: true, db) {
                return RunnerTouch(draining: try Self.isDraining(db, contact.name), events: [])
            }
            let previous = try Self.recordedStatus(db, contact.name)
            if previous == nil {
                try db.executeCached(
                    sql: """
                        INSERT INTO runners (name, labels, version, hostname, concurrency, first_seen_at, last_seen_at, draining, status)
                        VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'online')
                        """,
                    arguments: [
                        contact.name, labels ?? "[]", contact.version, contact.hostname, contact.concurrency, now.milliseconds,
                        now.milliseconds,
                    ])
            } else {
                _ = try Self.updateContact(contact, labels: labels, now: now, onlyIfOnline: false, db)
            }
            let draft = RunnerRules.event(runner: contact.name, from: previous, to: .online, id: Identifier.make(.evt, at: now), now: now)
            let events = try Self.appendRunnerEvents(draft.map { [$0] } ?? [], now: now, db)
            return RunnerTouch(draining: try Self.isDraining(db, contact.name), events: events)
        }
    }

    /// Writes a contact into the runner's row and makes it `online` — with `onlyIfOnline`, only
    /// if it already is. Whether a row changed.
    private static func updateContact(
        _ contact: RunnerContact, labels: String?, now: Timestamp, onlyIfOnline: Bool, _ db: Database
    ) throws -> Bool {
        try db.executeCached(
            sql: """
                UPDATE runners SET labels = COALESCE(?, labels), version = COALESCE(?, version),
                    hostname = COALESCE(?, hostname), concurrency = COALESCE(?, concurrency),
                    last_seen_at = max(last_seen_at, ?), status = 'online'
                WHERE name = ? AND (status = 'online' OR NOT ?)
                """,
            arguments: [labels, contact.version, contact.hostname, contact.concurrency, now.milliseconds, contact.name, onlyIfOnline])
        return db.changesCount > 0
    }

    private static func isDraining(_ db: Database, _ name: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: RunnerSQL.isDraining("?")), arguments: [name]) ?? false
    }

    public func recordGoodbye(runner name: String, now: Timestamp) async throws -> RunnerTouch? {
        try await writing { db in
            guard let previous = try Self.recordedStatus(db, name) else { return nil }
            try db.executeCached(
                sql: "UPDATE runners SET status = 'offline', last_seen_at = max(last_seen_at, ?) WHERE name = ?",
                arguments: [now.milliseconds, name])
            let draft = RunnerRules.event(runner: name, from: previous, to: .offline, id: Identifier.make(.evt, at: now), now: now)
            let events = try Self.appendRunnerEvents(draft.map { [$0] } ?? [], now: now, db)
            return RunnerTouch(draining: try Self.isDraining(db, name), events: events)
        }
    }

    public func silentRunners(since cutoff: Timestamp, limit: Int) async throws -> [String] {
        try await reading { db in
            try String.fetchAll(
                db.cachedStatement(
                    sql: "SELECT name FROM runners WHERE status = 'online' AND last_seen_at < ? ORDER BY last_seen_at LIMIT ?"),
                arguments: [cutoff.milliseconds, limit])
        }
    }

    public func recordSilence(runner name: String, cutoff: Timestamp, now: Timestamp) async throws -> Event? {
        try await writing { db -> Event? in
            guard
                try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM runners WHERE name = ? AND status = 'online' AND last_seen_at < ?"),
                    arguments: [name, cutoff.milliseconds]) != nil
            else { return nil }
            let holds = try Bool.fetchOne(db.cachedStatement(sql: RunnerSQL.holdsTasks("?")), arguments: [name]) ?? false
            let status = RunnerRules.goneStatus(holdsTasks: holds)
            try db.executeCached(sql: "UPDATE runners SET status = ? WHERE name = ?", arguments: [status.rawValue, name])
            let draft = RunnerRules.event(runner: name, from: .online, to: status, id: Identifier.make(.evt, at: now), now: now)
            return try Self.appendRunnerEvents(draft.map { [$0] } ?? [], now: now, db).first
        }
    }

    public func runner(name: String) async throws -> Runner? {
        try await reading { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM runners WHERE name = ?"), arguments: [name]).map {
                try Self.runner($0, db)
            }
        }
    }

    public func runners(limit: Int, after: String?) async throws -> (items: [Runner], nextCursor: String?) {
        try await reading { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT * FROM runners WHERE name > ? ORDER BY name LIMIT ?"), arguments: [after ?? "", limit + 1])
            let items = try rows.prefix(limit).map { try Self.runner($0, db) }
            return (items, rows.count > limit ? items.last?.name : nil)
        }
    }

    public func setDraining(_ draining: Bool, runner name: String) async throws -> Runner? {
        try await writing { db in
            try db.executeCached(sql: "UPDATE runners SET draining = ? WHERE name = ?", arguments: [draining, name])
            guard db.changesCount > 0 else { return nil }
            return try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM runners WHERE name = ?"), arguments: [name]).map {
                try Self.runner($0, db)
            }
        }
    }

    public func runnerCounts() async throws -> [RunnerStatus: Int] {
        try await reading { db in
            var counts: [RunnerStatus: Int] = [:]
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT status, count(*) AS n FROM runners GROUP BY status")) {
                if let status = RunnerStatus(rawValue: row["status"]) { counts[status] = row["n"] }
            }
            return counts
        }
    }

    private static func recordedStatus(_ db: Database, _ name: String) throws -> RunnerStatus? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT status FROM runners WHERE name = ?"), arguments: [name])
            .map { RunnerStatus(rawValue: $0) ?? .offline }
    }

    private static func runner(_ row: Row, _ db: Database) throws -> Runner {
        let name: String = row["name"]
        return Runner(
            name: name, labels: try JSONColumn.decode([String].self, row["labels"]), version: row["version"], hostname: row["hostname"],
            concurrency: row["concurrency"], firstSeenAt: Timestamp(milliseconds: row["first_seen_at"]),
            lastSeenAt: Timestamp(milliseconds: row["last_seen_at"]), draining: row["draining"],
            recordedStatus: RunnerStatus(rawValue: row["status"]) ?? .offline,
            running: try String.fetchAll(db.cachedStatement(sql: RunnerSQL.running("?")), arguments: [name]))
    }
}
