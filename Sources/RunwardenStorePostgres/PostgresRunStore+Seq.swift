import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Numbering events with the global `seq` while writers on every node commit in parallel.
///
/// `seq` must only ever grow in the order readers can see events (SPEC §7): a reader that has
/// seen N reads on with `after=N`, so an event that became visible later with a smaller number
/// would be skipped for good. A sequence hands out numbers at once, without a lock held to
/// commit, so two transactions may commit 8 before 7. Readers of the global feed therefore stop
/// short of the oldest number a transaction still in flight may hold — the *fence*:
///
/// - A writer, before it draws its numbers, takes a shared transaction-level advisory lock
///   keyed by the sequence's `last_value` as it reads it. Every number it then draws is at least
///   that key, and the lock lasts exactly until it commits or rolls back (PostgreSQL makes the
///   commit visible before it releases the lock).
/// - A reader first reads `last_value` (L), then the advisory keys held now (K), and reads
///   events up to `min(L, min(K) - 1)` in a snapshot taken after that. A number ≤ L was drawn
///   before the reader looked; its writer either locked its key before the reader looked at the
///   locks (so the fence stays below it while it is in flight), or it has finished (and a later
///   snapshot sees its events, or it rolled back and the number is a gap nobody will fill).
///
/// Writers never wait on one another, and their WAL flushes group-commit. Events of one run
/// need no fence: a run's changes hold its row lock until they commit, one after another.
extension PostgresRunStore {
    /// Advisory keys of in-flight numbering live in the two-integer key space, classid from
    /// here up ("RW" in the high bytes), so they are told apart from any other advisory lock.
    static let seqLockBase: Int64 = 0x5257_0000

    /// Draws `count` numbers, fenced as the type's comment says, ascending; with them, in the
    /// same round trip, the active webhook subscriptions the events' outbox rows are made for,
    /// and `writes` (as data-modifying common table expressions of the statement).
    static func drawSeqs(
        _ count: Int, _ tx: PostgresTransaction, after writes: RowWrites = RowWrites()
    ) async throws -> (seqs: [Int64], subscriptions: [Outbox.Subscription]) {
        // Constant text, numbers and `$n` markers of the writes only; every value is bound.
        try numbers(try await tx.rows(PostgresQuery(unsafeSQL: writes.prefix + numbering(count), binds: writes.values.binds)))
    }

    /// The statement `drawSeqs` runs: `count` rows of `seq` and, on the first number's row,
    /// `list`, the active subscriptions as JSON.
    static func numbering(_ count: Int) -> String {
        // One statement, the lock first: the LATERAL subquery names the fence's column, so it
        // runs only for the fence's row, after the lock was taken — never a number drawn before.
        // (`OFFSET 0` keeps the planner from flattening either subquery into one join it could
        // order either way.) The subscriptions ride on the first number's row only. The numbers
        // are written into the text, not bound: a statement without parameters is planned once
        // per connection (`PreparedStatements`), where a bound count is planned at every call.
        """
            SELECT drawn.seq, CASE WHEN drawn.n = 1 THEN subscriptions.list END AS list FROM
              (SELECT pg_advisory_xact_lock_shared((\(seqLockBase) + (last_value >> 31))::int, (last_value & 2147483647)::int)::text
               AS locked FROM events_seq OFFSET 0) AS fence,
              LATERAL (SELECT nextval('events_seq') AS seq, n FROM generate_series(1, \(count)) AS n
                       WHERE fence.locked IS NOT NULL OFFSET 0) AS drawn,
              (SELECT coalesce(json_agg(json_build_array(id, url, events) ORDER BY id), '[]')::text AS list
               FROM webhooks WHERE active) AS subscriptions
            """
    }

    /// The numbers (ascending) and subscriptions of `numbering`'s rows.
    static func numbers(_ rows: [PostgresRow]) throws -> (seqs: [Int64], subscriptions: [Outbox.Subscription]) {
        var seqs: [Int64] = []
        var subscriptions: [Outbox.Subscription] = []
        for row in rows {
            let (seq, list) = try row.decode((Int64, String?).self)
            seqs.append(seq)
            guard let list else { continue }
            subscriptions = try JSONColumn.decode([[String]].self, list).map { columns in
                guard columns.count == 3 else { throw StoreError.unavailable("a webhooks row read back malformed") }
                return Outbox.Subscription(id: columns[0], url: columns[1], patterns: try JSONColumn.decode([String].self, columns[2]))
            }
        }
        return (seqs.sorted(), subscriptions)
    }

    /// The highest `seq` below which no transaction in flight can still commit an event.
    static func seqFence(_ tx: PostgresTransaction) async throws -> Int64 {
        // Two statements, in this order: the numbers drawn, then the keys of those in flight.
        let drawn =
            try await tx.rows("SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM events_seq")
            .first?.decode(Int64.self) ?? 0
        let inFlight = try await tx.rows(
            """
            SELECT min(((classid::bigint - \(seqLockBase)) << 31) | objid::bigint) FROM pg_locks
            WHERE locktype = 'advisory' AND objsubid = 2 AND classid::bigint >= \(seqLockBase)
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """
        ).first?.decode(Int64?.self)
        return inFlight.map { min(drawn, $0 - 1) } ?? drawn
    }

    /// The fence, read on a connection of its own before the reader's snapshot is taken.
    func seqFence() async throws -> Int64 {
        try await transaction(.read) { tx in try await Self.seqFence(tx) }
    }
}
