import GRDB
import RunwardenCore
import RunwardenStore

/// Concurrency keys (SPEC §10): a new run's place in its key's line, and admission when a run
/// leaves it — each inside the caller's write transaction, so a slot is data, never memory.
extension SQLiteRunStore {
    /// Puts a new run of a key in line before it is inserted: cancels the older runs its
    /// `on_conflict` names (each as a cancel would, in this transaction), then `Run.enterLine`.
    static func enterLine(_ run: inout Run, drafts: inout [EventDraft], now: Timestamp, _ db: Database) throws -> [Committed<Void>] {
        guard let concurrency = run.spec.concurrency else { return [] }
        // `queue` cancels nothing: the line is not read (a new run then costs the key's holders, not its waiting runs).
        let members: [ConcurrencyMember] =
            concurrency.onConflict == .queue
            ? []
            : try Row.fetchAll(db.cachedStatement(sql: ConcurrencySQL.members("?")), arguments: [concurrency.key])
                .compactMap { ConcurrencySQL.member(id: $0["id"], status: $0["status"], slot: $0["concurrency_slot"]) }
        var canceled: [Committed<Void>] = []
        for victim in ConcurrencyRules.victims(of: concurrency.onConflict, among: members) {
            if let committed = try change(runID: victim, scope: .wholeRun, now: now, db, { change in try? change.cancel() }) {
                canceled += committed.allChanges
            }
        }
        run.enterLine(holders: try holders(db, key: concurrency.key).count, someoneWaits: try oldestWaiting(db, key: concurrency.key) != nil, drafts: &drafts)
        return canceled
    }

    /// Admits the runs first in the key's line while their limit leaves a slot: each becomes
    /// a holder and its tasks with no needs left `queued`, with their events.
    static func admitWaiting(key: String, now: Timestamp, _ db: Database) throws -> [Committed<Void>] {
        var admitted: [Committed<Void>] = []
        // Each pass admits one run or stops; a key has at most `maxLimit` slots to fill.
        for _ in 0..<ConcurrencySpec.maxLimit {
            guard let next = try oldestWaiting(db, key: key),
                let limit = try loadRunRow(db, runID: next)?.spec.concurrency?.limit,
                try holders(db, key: key).count < limit,
                let committed = try change(runID: next, scope: .wholeRun, now: now, db, { change in change.admit() })
            else { break }
            admitted += committed.allChanges
        }
        return admitted
    }

    public func concurrencyHolders(key: String) async throws -> [String] {
        try await reading { db in try Self.holders(db, key: key) }
    }

    /// The runs holding the key's slots, oldest first.
    static func holders(_ db: Database, key: String) throws -> [String] {
        try String.fetchAll(db.cachedStatement(sql: ConcurrencySQL.holders("?")), arguments: [key])
    }

    static func oldestWaiting(_ db: Database, key: String) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: ConcurrencySQL.oldestWaiting("?")), arguments: [key])
    }

    /// A waiting run's `held_by`; empty for any other run (nothing read).
    static func concurrencyHolders(_ db: Database, for run: Run) throws -> [String] {
        guard run.state.concurrencySlot == .waiting, let key = run.spec.concurrency?.key else { return [] }
        return try holders(db, key: key)
    }
}
