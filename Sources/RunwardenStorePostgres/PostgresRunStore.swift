import Logging
import PostgresNIO
import RunwardenStore
import ServiceLifecycle

/// `RunStore` on PostgreSQL through postgres-nio, for several server nodes sharing one
/// database (SPEC §5).
///
/// Same tables, JSON `spec`/`state` columns and semantics as the SQLite backend; what differs
/// is how concurrent writers on several nodes are kept apart:
/// - every change of a run holds that run's row lock (`SELECT … FOR UPDATE`) until it commits;
/// - a claim takes the run row, then the task row, with `FOR UPDATE SKIP LOCKED` (see
///   `claimOnce`), and the `locks` table's primary key makes a double workspace lock impossible;
/// - `seq` comes from a sequence, and readers stop below the numbers of transactions still in
///   flight, so a reader never sees a smaller `seq` appear behind one it has seen (see
///   `PostgresRunStore+Seq`);
/// - every commit announces what it changed with `pg_notify` (see `listen`).
///
/// Use: `run()` must be running (it runs the connection pool) before anything else is called;
/// then `migrate()` once per process.
public final class PostgresRunStore: RunStore, Service {
    let client: PostgresClient
    let url: PostgresURL
    let logger: Logger
    /// How long an operation waits for a connection before it answers `unavailable`.
    let connectionTimeout: Duration
    /// The statements every connection of this node runs prepared.
    let prepared = PreparedStatements()

    /// - Parameters:
    ///   - url: `postgres://user[:password]@host[:port]/database` (or `postgresql://`), with an
    ///     optional `?sslmode=disable|prefer|require`; TLS is off for 127.0.0.1/localhost and
    ///     preferred elsewhere.
    ///   - maxConnections: the most connections this node opens (plus one for `listen`).
    ///   - connectionTimeout: how long an operation may wait for a connection before it fails
    ///     with `StoreError.unavailable`.
    public init(url: String, maxConnections: Int = 20, connectionTimeout: Duration = .seconds(10), logger: Logger) throws {
        let parsed = try PostgresURL(url)
        self.url = parsed
        self.logger = logger
        self.connectionTimeout = connectionTimeout
        self.client = PostgresClient(
            configuration: parsed.clientConfiguration(maxConnections: maxConnections), backgroundLogger: logger)
    }

    /// Runs the connection pool until the task is cancelled or the service group shuts down.
    /// Nothing else makes progress unless this is running.
    public func run() async {
        await client.run()
    }

    public func checkHealth() async throws {
        do {
            try await transaction(.read, timeout: min(connectionTimeout, .seconds(3))) { tx in
                try await tx.execute("SELECT 1")
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.unavailable("PostgreSQL at \(url.displayName) cannot be read: \(Self.describe(error))")
        }
    }

    /// Sums the shards of `status_counts` (one per backend, migration 18). Rows of backends that
    /// are gone are folded into shard 0 first, so the table holds a few rows per live backend,
    /// not per backend ever started; one reader folds at a time, the others just sum.
    public func statusCounts() async throws -> StatusCounts {
        try await transaction(.write) { tx in
            let folds = try await tx.rows("SELECT pg_try_advisory_xact_lock(\(Self.statusCountsFoldLockKey))").first?.decode(Bool.self)
            if folds == true {
                try await tx.execute(
                    """
                    WITH gone AS (
                        DELETE FROM status_counts
                        WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
                        RETURNING kind, status, n
                    )
                    INSERT INTO status_counts (kind, status, shard, n)
                    SELECT kind, status, 0, sum(n) FROM gone GROUP BY kind, status ORDER BY kind, status
                    ON CONFLICT (kind, status, shard) DO UPDATE SET n = status_counts.n + EXCLUDED.n
                    """)
            }
            var counts = StatusCounts(runs: [:], tasks: [:])
            for row in try await tx.rows("SELECT kind, status, sum(n)::bigint FROM status_counts GROUP BY kind, status") {
                let (kind, status, count) = try row.decode((String, String, Int64).self)
                counts.add(kind: kind, status: status, count: Int(count))
            }
            return counts
        }
    }

    /// The advisory lock the reader folding gone backends' count rows holds ("rwcounts").
    static let statusCountsFoldLockKey: Int64 = 0x7277_636F_756E_7473
}
