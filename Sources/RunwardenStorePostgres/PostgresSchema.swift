import PostgresNIO
import RunwardenStore

/// The PostgreSQL schema: the SQLite backend's tables and columns, with BIGINT milliseconds
/// for timestamps, TEXT JSON for `spec`/`state`/`attempts`/`error`, BYTEA for payloads, plus
/// what several nodes need (the `counters` row that numbers events, `tasks.labels` so a claim
/// filters in SQL). Migrations are applied once, recorded in `schema_migrations`, and never
/// edited after they ship; add a new one instead.
enum PostgresSchema {
    struct Migration: Sendable {
        var version: Int64
        var name: String
        var statements: [String]
    }

    /// Held (for the migrating transaction) by whichever node migrates, so nodes starting
    /// together apply each migration once. "runwarden" in ASCII, truncated to 63 bits.
    static let migrationLockKey: Int64 = 0x7275_6E77_6172_6465

    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "runs-tasks-events-locks-webhooks",
            statements: [
                """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY,
                    workflow TEXT NOT NULL,
                    status TEXT NOT NULL,
                    version BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    deadline_at BIGINT,
                    spec TEXT NOT NULL,
                    state TEXT NOT NULL
                )
                """,
                "CREATE INDEX runs_by_status ON runs (status, id)",
                "CREATE INDEX runs_by_workflow ON runs (workflow, id)",
                "CREATE INDEX runs_deadline ON runs (deadline_at) WHERE deadline_at IS NOT NULL",
                """
                CREATE TABLE tasks (
                    id TEXT PRIMARY KEY,
                    run_id TEXT NOT NULL REFERENCES runs (id),
                    position BIGINT NOT NULL,
                    status TEXT NOT NULL,
                    workspace TEXT,
                    labels TEXT[] NOT NULL,
                    runner TEXT,
                    queued_at BIGINT,
                    heartbeat_at BIGINT,
                    deadline_at BIGINT,
                    spec TEXT NOT NULL,
                    state TEXT NOT NULL
                )
                """,
                "CREATE INDEX tasks_by_run ON tasks (run_id, position)",
                "CREATE INDEX tasks_claimable ON tasks (queued_at, run_id, position) WHERE status = 'queued'",
                "CREATE INDEX tasks_active ON tasks (heartbeat_at) WHERE status IN ('dispatched', 'running', 'canceling')",
                "CREATE INDEX tasks_deadline ON tasks (deadline_at) WHERE deadline_at IS NOT NULL",
                // Global counters; `seq` numbers events (see `numbered` in PostgresRunStore+Save).
                "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO counters (name, value) VALUES ('seq', 0)",
                """
                CREATE TABLE events (
                    seq BIGINT PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    run_id TEXT NOT NULL,
                    run_seq BIGINT NOT NULL,
                    task_id TEXT,
                    type TEXT NOT NULL,
                    status TEXT NOT NULL,
                    previous_status TEXT,
                    timestamp BIGINT NOT NULL,
                    attempt BIGINT,
                    error TEXT,
                    UNIQUE (run_id, run_seq)
                )
                """,
                "CREATE INDEX events_by_run ON events (run_id, seq)",
                """
                CREATE TABLE locks (
                    workspace TEXT PRIMARY KEY,
                    task_id TEXT NOT NULL,
                    run_id TEXT NOT NULL,
                    runner TEXT NOT NULL,
                    acquired_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE idempotency_keys (
                    scope TEXT NOT NULL,
                    key TEXT NOT NULL,
                    body TEXT NOT NULL,
                    run_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (scope, key)
                )
                """,
                """
                CREATE TABLE webhooks (
                    id TEXT PRIMARY KEY,
                    url TEXT NOT NULL,
                    events TEXT NOT NULL,
                    secret TEXT NOT NULL,
                    description TEXT,
                    active BOOLEAN NOT NULL,
                    disabled_reason TEXT,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE deliveries (
                    id TEXT PRIMARY KEY,
                    webhook_id TEXT,
                    run_id TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    event_seq BIGINT NOT NULL,
                    type TEXT NOT NULL,
                    url TEXT NOT NULL,
                    secret TEXT NOT NULL,
                    payload BYTEA NOT NULL,
                    status TEXT NOT NULL,
                    attempts TEXT NOT NULL,
                    next_attempt_at BIGINT,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX deliveries_due ON deliveries (next_attempt_at, event_seq) WHERE status = 'pending'",
                "CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id)",
                "CREATE INDEX deliveries_by_url ON deliveries (url) WHERE status = 'pending'",
            ]),
        // Set only while a task is `dispatched`: a claim retried after a lost answer finds the
        // task it already took.
        Migration(
            version: 2, name: "claim-ids",
            statements: [
                "ALTER TABLE tasks ADD COLUMN claim_id TEXT",
                "CREATE INDEX tasks_by_claim ON tasks (claim_id) WHERE claim_id IS NOT NULL",
            ]),
        // Until when a dispatcher holds a delivery it is attempting (NULL: nobody does), so that
        // nothing else makes it due again while that attempt is in flight.
        Migration(version: 3, name: "delivery-leases", statements: ["ALTER TABLE deliveries ADD COLUMN leased_until BIGINT"]),
        // A delivery is signed with its subscription's secret, or its run's callback secret,
        // read when it is leased: the copies in every outbox row go. The due query walks
        // pending URLs (`DeliverySQL.oldestDuePerURL`) on an index led by `url`, which also
        // serves what `deliveries_by_url` did.
        Migration(
            version: 4, name: "delivery-secrets-and-fair-dispatch",
            statements: [
                "ALTER TABLE deliveries DROP COLUMN secret",
                "DROP INDEX deliveries_by_url",
                DeliverySQL.pendingByURLIndex,
            ]),
        // Idempotency rows kept whole create bodies (`env` and its secrets); a digest is all a
        // replay check needs. Old FNV scopes stay: no token is known here to rehash them.
        Migration(
            version: 5, name: "idempotency-body-digests",
            statements: [
                "ALTER TABLE idempotency_keys RENAME COLUMN body TO body_sha256",
                "UPDATE idempotency_keys SET body_sha256 = encode(sha256(convert_to(body_sha256, 'UTF8')), 'hex')",
            ]),
        // Runs and tasks by status for /metrics, kept by triggers as each change commits. Each
        // connection adds to its own shard row (backend pid mod 16, per backend since migration
        // 18), so concurrent writers do not queue on one row lock; a scrape sums the shards.
        Migration(
            version: 6, name: "status-counts",
            statements: [
                """
                CREATE TABLE status_counts (
                    kind TEXT NOT NULL, status TEXT NOT NULL, shard INT NOT NULL, n BIGINT NOT NULL,
                    PRIMARY KEY (kind, status, shard)
                )
                """,
                "INSERT INTO status_counts SELECT 'runs', status, 0, count(*) FROM runs GROUP BY status",
                "INSERT INTO status_counts SELECT 'tasks', status, 0, count(*) FROM tasks GROUP BY status",
                countStatusFunction(create: "CREATE", slot: "pg_backend_pid() % 16"),
                "CREATE TRIGGER runs_counted AFTER INSERT OR DELETE ON runs FOR EACH ROW EXECUTE FUNCTION runwarden_count_status()",
                """
                CREATE TRIGGER runs_counted_on_update AFTER UPDATE OF status ON runs FOR EACH ROW
                WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION runwarden_count_status()
                """,
                "CREATE TRIGGER tasks_counted AFTER INSERT OR DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION runwarden_count_status()",
                """
                CREATE TRIGGER tasks_counted_on_update AFTER UPDATE OF status ON tasks FOR EACH ROW
                WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION runwarden_count_status()
                """,
            ]),
        // Each task lists the tasks that need it, so a task that ends looks at those alone
        // (`RunChange.releaseDependents`). Rows of earlier versions get theirs here; their
        // `needsLeft` and the run's `taskCounts` are counted by the next whole-run change.
        Migration(
            version: 7, name: "task-dependents",
            statements: [
                "ALTER TABLE tasks ADD COLUMN dependents TEXT NOT NULL DEFAULT '[]'",
                """
                UPDATE tasks SET dependents = edges.ids
                FROM (
                    SELECT needed.id AS needed_id, json_agg(dependent.id ORDER BY dependent.position)::text AS ids
                    FROM tasks dependent
                    CROSS JOIN LATERAL jsonb_array_elements_text(dependent.spec::jsonb -> 'needs') AS need(name)
                    JOIN tasks needed ON needed.run_id = dependent.run_id AND needed.spec::jsonb ->> 'name' = need.name
                    GROUP BY needed.id
                ) AS edges
                WHERE tasks.id = edges.needed_id
                """,
            ]),
        // A claim reads only the label sets the runner can take (`ClaimSQL`). New rows get
        // `ClaimSQL.labelsKey`; older ones an equivalent JSON array (spaced as json_agg writes it).
        Migration(
            version: 8, name: "claims-by-label-set",
            statements: [
                "ALTER TABLE tasks ADD COLUMN labels_key TEXT NOT NULL DEFAULT '[]'",
                """
                UPDATE tasks SET labels_key = (SELECT json_agg(label ORDER BY label)::text FROM unnest(labels) AS label)
                WHERE cardinality(labels) > 0
                """,
                ClaimSQL.queuedByLabelsIndex,
            ]),
        // Events are numbered by a sequence, fenced for readers, instead of the `counters` row
        // whose lock every event-writing transaction held until it committed
        // (`PostgresRunStore+Seq`). The sequence goes on from the counter.
        Migration(
            version: 9, name: "events-seq",
            statements: [
                "CREATE SEQUENCE events_seq AS BIGINT",
                "SELECT setval('events_seq', GREATEST(value, 1), value > 0) FROM counters WHERE name = 'seq'",
                "DELETE FROM counters WHERE name = 'seq'",
            ]),
        // Several deliveries to one receiver at once, one per run (`DeliverySQL.dueHeadsPerRun`).
        Migration(version: 10, name: "deliveries-per-run", statements: [DeliverySQL.pendingByURLAndRunIndex]),
        // Retention finds finished runs by `finished_at` and marks them `compacted_at`; the
        // greatest `seq` it removed is the `counters` row `compacted_seq` (SPEC §7).
        Migration(
            version: 11, name: "retention",
            statements: [
                "ALTER TABLE runs ADD COLUMN finished_at BIGINT",
                "ALTER TABLE runs ADD COLUMN compacted_at BIGINT",
                "UPDATE runs SET finished_at = (state::jsonb -> 'finishedAt' ->> 'milliseconds')::bigint",
                "CREATE INDEX runs_compactable ON runs (finished_at) WHERE finished_at IS NOT NULL AND compacted_at IS NULL",
                "CREATE INDEX deliveries_by_run ON deliveries (run_id)",
                "INSERT INTO counters (name, value) VALUES ('compacted_seq', 0)",
            ]),
        // The runner registry (SPEC §8): one row per runner name, its recorded status being the
        // one its last `runner.*` event announced. Runner events belong to no run: `run_id` and
        // `run_seq` may be NULL, and `runner` names the runner.
        Migration(
            version: 12, name: "runners",
            statements: [
                """
                CREATE TABLE runners (
                    name TEXT PRIMARY KEY,
                    labels TEXT NOT NULL,
                    version TEXT,
                    hostname TEXT,
                    concurrency BIGINT,
                    first_seen_at BIGINT NOT NULL,
                    last_seen_at BIGINT NOT NULL,
                    draining BOOLEAN NOT NULL DEFAULT false,
                    status TEXT NOT NULL
                )
                """,
                RunnerSQL.onlineIndex,
                RunnerSQL.activeByRunnerIndex,
                "ALTER TABLE events ALTER COLUMN run_id DROP NOT NULL, ALTER COLUMN run_seq DROP NOT NULL, ADD COLUMN runner TEXT",
            ]),
        // Per-runner tokens (SPEC §8): the secret's SHA-256 only; scope as JSON (NULL: any).
        Migration(version: 13, name: "runner-tokens", statements: [RunnerTokenSQL.table(milliseconds: "BIGINT")]),
        // Each attempt's output in chunks at byte offsets (SPEC §9): `task_logs` per attempt,
        // `log_chunks` its bytes; retention finds old logs by `updated_at`.
        Migration(
            version: 14, name: "task-logs",
            statements: [
                """
                CREATE TABLE task_logs (
                    task_id TEXT NOT NULL, attempt INTEGER NOT NULL, run_id TEXT NOT NULL, runner TEXT,
                    received BIGINT NOT NULL, tail_stored BIGINT NOT NULL, truncated BIGINT NOT NULL,
                    final BOOLEAN NOT NULL, updated_at BIGINT NOT NULL, expired_at BIGINT,
                    PRIMARY KEY (task_id, attempt))
                """,
                "CREATE INDEX task_logs_expirable ON task_logs (updated_at) WHERE expired_at IS NULL",
                """
                CREATE TABLE log_chunks (
                    task_id TEXT NOT NULL, attempt INTEGER NOT NULL, byte_offset BIGINT NOT NULL, data BYTEA NOT NULL,
                    PRIMARY KEY (task_id, attempt, byte_offset))
                """,
            ]),
        // An approve's or reject's decision (SPEC §10) kept in its event, as JSON.
        Migration(version: 15, name: "approvals", statements: ["ALTER TABLE events ADD COLUMN approval TEXT"]),
        // Claims take the highest priority first (SPEC §10): the claim index orders each label
        // set by priority, then age. Rows from before are priority 0.
        Migration(
            version: 16, name: "priorities",
            statements: [
                "ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
                "DROP INDEX tasks_queued_by_labels",
                ClaimSQL.queuedByPriorityIndex,
            ]),
        // A run's concurrency key and where it stands in the key's line (SPEC §10); NULL for
        // runs from before and runs without a key, so the line's index skips them.
        Migration(
            version: 17, name: "concurrency-keys",
            statements: [
                "ALTER TABLE runs ADD COLUMN concurrency_key TEXT",
                "ALTER TABLE runs ADD COLUMN concurrency_slot TEXT",
                ConcurrencySQL.index,
            ]),
        // Status counts kept per backend (its pid), not per pid mod 16: two backends sharing a
        // shard deadlocked when one changed a run then its tasks (a create) while the other
        // changed a task then its run (a report) — a 1 s stall before PostgreSQL broke it. A
        // backend's own rows are touched by it alone; rows of backends gone are folded into
        // shard 0 when the counts are read (`PostgresRunStore.statusCounts`).
        Migration(
            version: 18, name: "status-counts-per-backend",
            statements: [
                countStatusFunction(create: "CREATE OR REPLACE", slot: "pg_backend_pid()"),
            ]),
    ]

    /// The trigger function keeping `status_counts`: each changed row's old status counted down
    /// and its new one up, in the shard row `slot` picks.
    private static func countStatusFunction(create: String, slot: String) -> String {
        """
        \(create) FUNCTION runwarden_count_status() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            slot INT := \(slot);
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO status_counts VALUES (TG_TABLE_NAME, OLD.status, slot, -1)
                    ON CONFLICT (kind, status, shard) DO UPDATE SET n = status_counts.n - 1;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                INSERT INTO status_counts VALUES (TG_TABLE_NAME, NEW.status, slot, 1)
                    ON CONFLICT (kind, status, shard) DO UPDATE SET n = status_counts.n + 1;
            END IF;
            RETURN NULL;
        END
        $$
        """
    }
}

extension PostgresRunStore {
    /// Brings the database to the current schema. Idempotent; nodes that start together wait
    /// for one another on an advisory lock, so each migration is applied exactly once, in one
    /// transaction with its `schema_migrations` row.
    public func migrate() async throws { try await migrate(through: nil) }

    /// Applies the migrations up to version `last` (all when nil): tests build a database as an
    /// earlier release left it, to check what a later migration does to its rows.
    func migrate(through last: Int64?) async throws {
        try await transaction(.write) { tx in
            try await tx.execute("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLockKey))")
            try await tx.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL
                )
                """)
            let applied = Set(try await tx.rows("SELECT version FROM schema_migrations").map { try $0.decode(Int64.self) })
            // A newer runwarden migrated this database: its tables mean what this build cannot
            // know. Refuse to start rather than write rows the newer nodes would misread.
            let unknown = applied.subtracting(PostgresSchema.migrations.map(\.version))
            if let newest = unknown.max() {
                throw StoreError.unavailable(
                    "the database was migrated by a newer runwarden (schema version \(newest); this one knows up to \(PostgresSchema.migrations.last?.version ?? 0)); run that version or newer, or restore a backup taken before the upgrade")
            }
            for migration in PostgresSchema.migrations where !applied.contains(migration.version) {
                if let last, migration.version > last { break }
                for statement in migration.statements {
                    // Constant DDL from this file; no value is ever spliced in.
                    try await tx.execute(PostgresQuery(unsafeSQL: statement))
                }
                try await tx.execute(
                    """
                    INSERT INTO schema_migrations (version, name, applied_at)
                    VALUES (\(migration.version), \(migration.name), (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                    """)
                tx.logger.info("applied PostgreSQL migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            }
        }
    }
}
