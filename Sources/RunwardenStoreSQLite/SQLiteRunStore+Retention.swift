import GRDB
import RunwardenCore
import RunwardenStore

/// Retention (SPEC §7): finished runs lose their events, deliveries and idempotency keys, a
/// batch per transaction, and keep their final snapshot.
extension SQLiteRunStore {
    public func compactRuns(finishedBefore cutoff: Timestamp, limit: Int, now: Timestamp) async throws -> Int {
        let compacted = try await writing { db -> Int in
            let ids = try String.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT id FROM runs INDEXED BY runs_compactable
                        WHERE finished_at IS NOT NULL AND compacted_at IS NULL AND finished_at < ? ORDER BY finished_at LIMIT ?
                        """),
                arguments: [cutoff.milliseconds, limit])
            for id in ids {
                guard var run = try Self.loadRunRow(db, runID: id) else { continue }
                let removedThrough = try Int64.fetchOne(
                    db.cachedStatement(sql: "SELECT MAX(seq) FROM events WHERE run_id = ?"), arguments: [id]) ?? 0
                try db.execute(sql: "DELETE FROM events WHERE run_id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM deliveries WHERE run_id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM idempotency_keys WHERE run_id = ?", arguments: [id])
                try db.execute(
                    sql: "UPDATE counters SET value = MAX(value, ?) WHERE name = 'compacted_seq'", arguments: [removedThrough])
                // The snapshot now shows `compacted`: a visible change, so one version step.
                run.state.compactedAt = now
                run.state.version += 1
                try db.execute(
                    sql: "UPDATE runs SET compacted_at = ?, version = ?, state = ? WHERE id = ?",
                    arguments: [now.milliseconds, run.state.version, try JSONColumn.runStates.encode(run.state, row: id), id])
            }
            return ids.count
        }
        if compacted > 0 {
            // Gives the freed pages back to the file system (a no-op in a file made before
            // `auto_vacuum = INCREMENTAL`, which reuses them instead).
            try await writing { db in try db.execute(sql: "PRAGMA incremental_vacuum") }
        }
        return compacted
    }

    public func compactRunnerEvents(before cutoff: Timestamp, limit: Int) async throws -> Int {
        try await writing { db in
            let seqs = try Int64.fetchAll(
                db.cachedStatement(sql: RunnerSQL.oldRunnerEvents(cutoff: "?", limit: "?")), arguments: [cutoff.milliseconds, limit])
            guard let last = seqs.last else { return 0 }
            try db.execute(
                sql: "DELETE FROM events WHERE run_id IS NULL AND seq <= ? AND timestamp < ?", arguments: [last, cutoff.milliseconds])
            let removed = db.changesCount
            try db.execute(sql: RunnerSQL.runnerDeliveriesThrough("?"), arguments: [last])
            try db.execute(sql: "UPDATE counters SET value = MAX(value, ?) WHERE name = 'compacted_seq'", arguments: [last])
            return removed
        }
    }

    public func retainedEvents() async throws -> RetainedEvents {
        try await reading { db in
            RetainedEvents(
                removedThrough: try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'compacted_seq'") ?? 0,
                oldestKept: try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM events"))
        }
    }
}
