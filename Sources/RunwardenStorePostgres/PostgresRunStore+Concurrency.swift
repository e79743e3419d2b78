import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Concurrency keys (SPEC §10), as `SQLiteRunStore+Concurrency` does them, with what several
/// nodes need: whoever reads or changes a key's line first holds the key's advisory lock until
/// commit, so two nodes never hand out the same slot. A lock taken after a run's row lock can
/// meet a creator holding the key and waiting for that row: PostgreSQL then aborts one of the
/// two, and `transaction` runs it again.
extension PostgresRunStore {
    static func lockLine(_ tx: PostgresTransaction, key: String) async throws {
        try await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('concurrency:' || \(key), 0))")
    }

    /// See `SQLiteRunStore.enterLine`.
    static func enterLine(
        _ run: inout Run, drafts: inout [EventDraft], now: Timestamp, _ tx: PostgresTransaction
    ) async throws -> [Committed<Void>] {
        guard let concurrency = run.spec.concurrency else { return [] }
        try await lockLine(tx, key: concurrency.key)
        var binds = PostgresBindings()
        binds.append(concurrency.key)
        // `queue` cancels nothing: the line is not read (a new run then costs the key's holders, not its waiting runs).
        let members: [ConcurrencyMember] =
            concurrency.onConflict == .queue
            ? []
            : try await tx.rows(PostgresQuery(unsafeSQL: ConcurrencySQL.members("$1"), binds: binds)).compactMap { row in
                let (id, status, slot) = try row.decode((String, String, String).self)
                return ConcurrencySQL.member(id: id, status: status, slot: slot)
            }
        var canceled: [Committed<Void>] = []
        for victim in ConcurrencyRules.victims(of: concurrency.onConflict, among: members) {
            if let committed = try await change(runID: victim, scope: .wholeRun, now: now, tx, { change in try? change.cancel() }) {
                canceled += committed.allChanges
            }
        }
        run.enterLine(
            holders: try await holders(tx, key: concurrency.key).count,
            someoneWaits: try await oldestWaiting(tx, key: concurrency.key) != nil, drafts: &drafts)
        return canceled
    }

    /// See `SQLiteRunStore.admitWaiting`.
    static func admitWaiting(key: String, now: Timestamp, _ tx: PostgresTransaction) async throws -> [Committed<Void>] {
        try await lockLine(tx, key: key)
        var admitted: [Committed<Void>] = []
        for _ in 0..<ConcurrencySpec.maxLimit {
            guard let next = try await oldestWaiting(tx, key: key),
                let limit = try await loadRunRow(tx, runID: next, forUpdate: false)?.spec.concurrency?.limit,
                try await holders(tx, key: key).count < limit,
                let committed = try await change(runID: next, scope: .wholeRun, now: now, tx, { change in change.admit() })
            else { break }
            admitted += committed.allChanges
        }
        return admitted
    }

    public func concurrencyHolders(key: String) async throws -> [String] {
        try await transaction(.read) { tx in try await Self.holders(tx, key: key) }
    }

    static func holders(_ tx: PostgresTransaction, key: String) async throws -> [String] {
        var binds = PostgresBindings()
        binds.append(key)
        return try await tx.rows(PostgresQuery(unsafeSQL: ConcurrencySQL.holders("$1"), binds: binds)).map { try $0.decode(String.self) }
    }

    static func oldestWaiting(_ tx: PostgresTransaction, key: String) async throws -> String? {
        var binds = PostgresBindings()
        binds.append(key)
        return try await tx.rows(PostgresQuery(unsafeSQL: ConcurrencySQL.oldestWaiting("$1"), binds: binds)).first?.decode(String.self)
    }

    /// A waiting run's `held_by`; empty for any other run (nothing read).
    static func concurrencyHolders(_ tx: PostgresTransaction, for run: Run) async throws -> [String] {
        guard run.state.concurrencySlot == .waiting, let key = run.spec.concurrency?.key else { return [] }
        return try await holders(tx, key: key)
    }
}
