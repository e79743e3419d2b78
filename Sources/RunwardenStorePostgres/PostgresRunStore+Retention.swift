import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Retention (SPEC §7): finished runs lose their events, deliveries and idempotency keys, a
/// batch per transaction, and keep their final snapshot. PostgreSQL's autovacuum makes the
/// deleted rows' space reusable.
extension PostgresRunStore {
    public func compactRuns(finishedBefore cutoff: Timestamp, limit: Int, now: Timestamp) async throws -> Int {
        try await transaction(.write) { tx in
            // Skips runs another node is compacting or changing right now.
            let rows = try await tx.rows(
                """
                SELECT id, state FROM runs
                WHERE finished_at IS NOT NULL AND compacted_at IS NULL AND finished_at < \(cutoff.milliseconds)
                ORDER BY finished_at LIMIT \(max(0, limit)) FOR UPDATE SKIP LOCKED
                """)
            for row in rows {
                let (id, stateText) = try row.decode((String, String).self)
                var state = try JSONColumn.runStates.decode(stateText, row: id)
                let removedThrough =
                    try await tx.rows("SELECT COALESCE(MAX(seq), 0)::bigint FROM events WHERE run_id = \(id)").first?.decode(Int64.self)
                    ?? 0
                try await tx.execute("DELETE FROM events WHERE run_id = \(id)")
                try await tx.execute("DELETE FROM deliveries WHERE run_id = \(id)")
                try await tx.execute("DELETE FROM idempotency_keys WHERE run_id = \(id)")
                try await tx.execute("UPDATE counters SET value = GREATEST(value, \(removedThrough)) WHERE name = 'compacted_seq'")
                // The snapshot now shows `compacted`: a visible change, so one version step.
                state.compactedAt = now
                state.version += 1
                try await tx.execute(
                    """
                    UPDATE runs SET compacted_at = \(now.milliseconds), version = \(state.version),
                        state = \(try JSONColumn.runStates.encode(state, row: id))
                    WHERE id = \(id)
                    """)
                tx.notify(.run(id))
            }
            return rows.count
        }
    }

    public func compactRunnerEvents(before cutoff: Timestamp, limit: Int) async throws -> Int {
        try await transaction(.write) { tx in
            var binds = PostgresBindings()
            binds.append(cutoff.milliseconds)
            binds.append(Int64(max(0, limit)))
            let seqs = try await tx.rows(PostgresQuery(unsafeSQL: RunnerSQL.oldRunnerEvents(cutoff: "$1", limit: "$2"), binds: binds))
                .map { try $0.decode(Int64.self) }
            guard let last = seqs.last else { return 0 }
            let removed = try await tx.rows(
                "DELETE FROM events WHERE run_id IS NULL AND seq <= \(last) AND timestamp < \(cutoff.milliseconds) RETURNING seq"
            ).count
            var through = PostgresBindings()
            through.append(last)
            try await tx.execute(PostgresQuery(unsafeSQL: RunnerSQL.runnerDeliveriesThrough("$1"), binds: through))
            try await tx.execute("UPDATE counters SET value = GREATEST(value, \(last)) WHERE name = 'compacted_seq'")
            return removed
        }
    }

    public func retainedEvents() async throws -> RetainedEvents {
        try await transaction(.read) { tx in
            let removed = try await tx.rows("SELECT value FROM counters WHERE name = 'compacted_seq'").first?.decode(Int64.self) ?? 0
            let oldest = try await tx.rows("SELECT MIN(seq) FROM events").first?.decode(Int64?.self) ?? nil
            return RetainedEvents(removedThrough: removed, oldestKept: oldest)
        }
    }
}
