import GRDB
import RunwardenCore
import RunwardenStore

/// The SQLite schema. Migrations are registered once and never edited after they ship.
///
/// A run and each task keep their definition (`spec`) and changing state (`state`) as JSON;
/// the columns beside them are the ones queries filter and sort on.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-runs-tasks-events-locks") { db in
            try db.execute(
                sql: """
                    CREATE TABLE runs (
                        id TEXT PRIMARY KEY NOT NULL,
                        workflow TEXT NOT NULL,
                        status TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        created_at INTEGER NOT NULL,
                        spec TEXT NOT NULL,
                        state TEXT NOT NULL
                    );
                    CREATE INDEX runs_by_status ON runs(status, id);
                    CREATE INDEX runs_by_workflow ON runs(workflow, id);

                    CREATE TABLE tasks (
                        id TEXT PRIMARY KEY NOT NULL,
                        run_id TEXT NOT NULL REFERENCES runs(id),
                        position INTEGER NOT NULL,
                        status TEXT NOT NULL,
                        workspace TEXT,
                        runner TEXT,
                        queued_at INTEGER,
                        heartbeat_at INTEGER,
                        spec TEXT NOT NULL,
                        state TEXT NOT NULL
                    );
                    CREATE INDEX tasks_by_run ON tasks(run_id, position);
                    CREATE INDEX tasks_claimable ON tasks(queued_at, run_id, position) WHERE status = 'queued';
                    CREATE INDEX tasks_active ON tasks(heartbeat_at) WHERE status IN ('dispatched', 'running', 'canceling');

                    CREATE TABLE events (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        run_id TEXT NOT NULL,
                        run_seq INTEGER NOT NULL,
                        task_id TEXT,
                        type TEXT NOT NULL,
                        status TEXT NOT NULL,
                        previous_status TEXT,
                        timestamp INTEGER NOT NULL,
                        attempt INTEGER,
                        error TEXT,
                        UNIQUE (run_id, run_seq)
                    );

                    CREATE TABLE locks (
                        workspace TEXT PRIMARY KEY NOT NULL,
                        task_id TEXT NOT NULL,
                        run_id TEXT NOT NULL,
                        runner TEXT NOT NULL,
                        acquired_at INTEGER NOT NULL
                    );

                    CREATE TABLE idempotency_keys (
                        scope TEXT NOT NULL,
                        key TEXT NOT NULL,
                        body TEXT NOT NULL,
                        run_id TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        PRIMARY KEY (scope, key)
                    );
                    """)
        }
        migrator.registerMigration("v2-deadlines") { db in
            // When the server must time out a task or a run; NULL when nothing is due.
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN deadline_at INTEGER;
                    ALTER TABLE runs ADD COLUMN deadline_at INTEGER;
                    CREATE INDEX tasks_deadline ON tasks(deadline_at) WHERE deadline_at IS NOT NULL;
                    CREATE INDEX runs_deadline ON runs(deadline_at) WHERE deadline_at IS NOT NULL;
                    """)
        }
        migrator.registerMigration("v3-webhooks-outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE webhooks (
                        id TEXT PRIMARY KEY NOT NULL,
                        url TEXT NOT NULL,
                        events TEXT NOT NULL,
                        secret TEXT NOT NULL,
                        description TEXT,
                        active INTEGER NOT NULL,
                        disabled_reason TEXT,
                        created_at INTEGER NOT NULL
                    );

                    CREATE TABLE deliveries (
                        id TEXT PRIMARY KEY NOT NULL,
                        webhook_id TEXT,
                        run_id TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        event_seq INTEGER NOT NULL,
                        type TEXT NOT NULL,
                        url TEXT NOT NULL,
                        secret TEXT NOT NULL,
                        payload BLOB NOT NULL,
                        status TEXT NOT NULL,
                        attempts TEXT NOT NULL,
                        next_attempt_at INTEGER,
                        created_at INTEGER NOT NULL
                    );
                    CREATE INDEX deliveries_due ON deliveries(next_attempt_at, event_seq) WHERE status = 'pending';
                    CREATE INDEX deliveries_by_webhook ON deliveries(webhook_id, id);
                    CREATE INDEX deliveries_by_url ON deliveries(url) WHERE status = 'pending';
                    """)
        }
        migrator.registerMigration("v4-claim-ids") { db in
            // Set only while a task is `dispatched`: a claim retried after a lost answer finds
            // the task it already took (see `claim(runner:labels:claimID:now:)`).
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN claim_id TEXT;
                    CREATE INDEX tasks_by_claim ON tasks(claim_id) WHERE claim_id IS NOT NULL;
                    """)
        }
        migrator.registerMigration("v5-delivery-leases") { db in
            // Until when a dispatcher holds a delivery it is attempting (NULL: nobody does), so
            // that nothing else makes it due again while that attempt is in flight.
            try db.execute(sql: "ALTER TABLE deliveries ADD COLUMN leased_until INTEGER")
        }
        migrator.registerMigration("v6-delivery-secrets-and-fair-dispatch") { db in
            // A delivery is signed with its subscription's secret, or its run's callback
            // secret, read when it is leased: the copies in every outbox row go. The column
            // stays, always '' (DROP COLUMN needs SQLite 3.35; Ubuntu 20.04 ships 3.31).
            // The due query walks pending URLs (`DeliverySQL.oldestDuePerURL`); this index,
            // led by `url`, also serves what `deliveries_by_url` did.
            try db.execute(
                sql: """
                    UPDATE deliveries SET secret = '';
                    DROP INDEX deliveries_by_url;
                    \(DeliverySQL.pendingByURLIndex);
                    """)
        }
        migrator.registerMigration("v7-idempotency-body-digests") { db in
            // Idempotency rows kept whole create bodies, `env` and its secrets included; a
            // digest is all a replay check needs. Scopes were FNV-1a of the token and are
            // left as they are: no token is known here to rehash, so a client token's keys
            // sent before the upgrade are not replayed after it (open mode's scope is unchanged).
            try db.execute(sql: "ALTER TABLE idempotency_keys RENAME COLUMN body TO body_sha256")
            let rows = try Row.fetchAll(db, sql: "SELECT rowid, body_sha256 FROM idempotency_keys")
            for row in rows {
                let body: String = row["body_sha256"]
                try db.execute(
                    sql: "UPDATE idempotency_keys SET body_sha256 = ? WHERE rowid = ?",
                    arguments: [IdempotencyKey.digest(body), row["rowid"] as Int64])
            }
        }
        migrator.registerMigration("v8-status-counts") { db in
            // Runs and tasks by status for /metrics, kept by triggers as each change commits:
            // a scrape reads a dozen rows instead of counting every run and task.
            try db.execute(
                sql: """
                    CREATE TABLE status_counts (
                        kind TEXT NOT NULL,
                        status TEXT NOT NULL,
                        n INTEGER NOT NULL,
                        PRIMARY KEY (kind, status)
                    );
                    INSERT INTO status_counts (kind, status, n) SELECT 'runs', status, count(*) FROM runs GROUP BY status;
                    INSERT INTO status_counts (kind, status, n) SELECT 'tasks', status, count(*) FROM tasks GROUP BY status;
                    """)
            for table in ["runs", "tasks"] {
                let add = """
                    INSERT INTO status_counts (kind, status, n) VALUES ('\(table)', NEW.status, 1)
                        ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;
                    """
                let remove = "UPDATE status_counts SET n = n - 1 WHERE kind = '\(table)' AND status = OLD.status;"
                try db.execute(
                    sql: """
                        CREATE TRIGGER \(table)_counted_on_insert AFTER INSERT ON \(table) BEGIN \(add) END;
                        CREATE TRIGGER \(table)_counted_on_update AFTER UPDATE OF status ON \(table)
                            WHEN OLD.status <> NEW.status BEGIN \(remove) \(add) END;
                        CREATE TRIGGER \(table)_counted_on_delete AFTER DELETE ON \(table) BEGIN \(remove) END;
                        """)
            }
        }
        migrator.registerMigration("v9-task-dependents") { db in
            // Each task lists the tasks that need it, so a task that ends looks at those alone
            // (`RunChange.releaseDependents`). Rows of earlier versions get theirs here; their
            // `needsLeft` and the run's `taskCounts` are counted by the next whole-run change.
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN dependents TEXT NOT NULL DEFAULT '[]';
                    CREATE TEMP TABLE migrating_names AS SELECT run_id, json_extract(spec, '$.name') AS name, id FROM tasks;
                    CREATE INDEX temp.migrating_names_by_name ON migrating_names (run_id, name);
                    CREATE TEMP TABLE migrating_edges AS
                        SELECT needed.id AS needed_id, dependent.id AS dependent_id, dependent.position AS position
                        FROM tasks dependent, json_each(dependent.spec, '$.needs') need
                        JOIN migrating_names needed ON needed.run_id = dependent.run_id AND needed.name = need.value;
                    CREATE INDEX temp.migrating_edges_by_needed ON migrating_edges (needed_id, position);
                    UPDATE tasks SET dependents = (
                        SELECT json_group_array(dependent_id)
                        FROM (SELECT dependent_id FROM migrating_edges WHERE needed_id = tasks.id ORDER BY position))
                    WHERE id IN (SELECT needed_id FROM migrating_edges);
                    DROP TABLE migrating_edges;
                    DROP TABLE migrating_names;
                    """)
        }
        migrator.registerMigration("v10-claims-by-label-set") { db in
            // A claim reads only the label sets the runner can take (`ClaimSQL`). Keys are
            // written by `ClaimSQL.labelsKey`, here too, so equal sets have equal keys.
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN labels_key TEXT NOT NULL DEFAULT '[]'")
            let labelled = try Row.fetchAll(db, sql: "SELECT id, spec FROM tasks WHERE json_array_length(spec, '$.labels') > 0")
            for row in labelled {
                let spec = try JSONColumn.decode(TaskSpec.self, row["spec"])
                try db.execute(
                    sql: "UPDATE tasks SET labels_key = ? WHERE id = ?", arguments: [ClaimSQL.labelsKey(spec.labels), row["id"]])
            }
            try db.execute(sql: ClaimSQL.queuedByLabelsIndex)
            try db.execute(sql: "DROP INDEX tasks_claimable")
        }
        migrator.registerMigration("v11-deliveries-per-run") { db in
            // Several deliveries to one receiver at once, one per run (`DeliverySQL.dueHeadsPerRun`).
            try db.execute(sql: DeliverySQL.pendingByURLAndRunIndex)
        }
        migrator.registerMigration("v12-retention") { db in
            // Retention finds finished runs by `finished_at` and marks them `compacted_at`; the
            // greatest `seq` it removed is the `counters` row `compacted_seq` (SPEC §7).
            try db.execute(
                sql: """
                    ALTER TABLE runs ADD COLUMN finished_at INTEGER;
                    ALTER TABLE runs ADD COLUMN compacted_at INTEGER;
                    UPDATE runs SET finished_at = json_extract(state, '$.finishedAt.milliseconds');
                    CREATE INDEX runs_compactable ON runs (finished_at) WHERE finished_at IS NOT NULL AND compacted_at IS NULL;
                    CREATE INDEX deliveries_by_run ON deliveries (run_id);
                    CREATE TABLE counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
                    INSERT INTO counters (name, value) VALUES ('compacted_seq', 0);
                    """)
        }
        migrator.registerMigration("v13-runners") { db in
            // The runner registry (SPEC §8): one row per runner name, its recorded status being
            // the one its last `runner.*` event announced. A runner's `running` tasks and "does it
            // hold any" are one index range each (`RunnerSQL`).
            try db.execute(
                sql: """
                    CREATE TABLE runners (
                        name TEXT PRIMARY KEY NOT NULL,
                        labels TEXT NOT NULL,
                        version TEXT,
                        hostname TEXT,
                        concurrency INTEGER,
                        first_seen_at INTEGER NOT NULL,
                        last_seen_at INTEGER NOT NULL,
                        draining INTEGER NOT NULL DEFAULT 0,
                        status TEXT NOT NULL
                    );
                    \(RunnerSQL.onlineIndex);
                    \(RunnerSQL.activeByRunnerIndex);
                    """)
            // Runner events belong to no run: `run_id` and `run_seq` may be NULL, and `runner`
            // names the runner. SQLite cannot drop NOT NULL, so the table is rebuilt with every
            // row and `seq` as it was; the autoincrement's high-water mark is carried over too, so
            // a `seq` that retention removed is never handed out again.
            let highWater = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0
            try db.execute(
                sql: """
                    CREATE TABLE events_v13 (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        run_id TEXT,
                        run_seq INTEGER,
                        task_id TEXT,
                        type TEXT NOT NULL,
                        status TEXT NOT NULL,
                        previous_status TEXT,
                        timestamp INTEGER NOT NULL,
                        attempt INTEGER,
                        error TEXT,
                        runner TEXT,
                        UNIQUE (run_id, run_seq)
                    );
                    INSERT INTO events_v13 (seq, id, run_id, run_seq, task_id, type, status, previous_status, timestamp, attempt, error)
                        SELECT seq, id, run_id, run_seq, task_id, type, status, previous_status, timestamp, attempt, error FROM events;
                    DROP TABLE events;
                    ALTER TABLE events_v13 RENAME TO events;
                    DELETE FROM sqlite_sequence WHERE name IN ('events', 'events_v13');
                    """)
            try db.execute(
                sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', max(?, (SELECT COALESCE(MAX(seq), 0) FROM events)))",
                arguments: [highWater])
        }
        migrator.registerMigration("v14-runner-tokens") { db in
            // Per-runner tokens (SPEC §8): the secret's SHA-256 only; scope as JSON (NULL: any).
            try db.execute(sql: RunnerTokenSQL.table(milliseconds: "INTEGER"))
        }
        migrator.registerMigration("v15-task-logs") { db in
            // Each attempt's output in chunks at byte offsets (SPEC §9): `task_logs` per attempt,
            // `log_chunks` its bytes; retention finds old logs by `updated_at`.
            try db.execute(
                sql: """
                    CREATE TABLE task_logs (
                        task_id TEXT NOT NULL, attempt INTEGER NOT NULL, run_id TEXT NOT NULL, runner TEXT,
                        received INTEGER NOT NULL, tail_stored INTEGER NOT NULL, truncated INTEGER NOT NULL,
                        final INTEGER NOT NULL, updated_at INTEGER NOT NULL, expired_at INTEGER,
                        PRIMARY KEY (task_id, attempt));
                    CREATE INDEX task_logs_expirable ON task_logs (updated_at) WHERE expired_at IS NULL;
                    CREATE TABLE log_chunks (
                        task_id TEXT NOT NULL, attempt INTEGER NOT NULL, byte_offset INTEGER NOT NULL, data BLOB NOT NULL,
                        PRIMARY KEY (task_id, attempt, byte_offset));
                    """)
        }
        migrator.registerMigration("v16-approvals") { db in
            // An approve's or reject's decision (SPEC §10) kept in its event, as JSON.
            try db.execute(sql: "ALTER TABLE events ADD COLUMN approval TEXT")
        }
        migrator.registerMigration("v17-priorities") { db in
            // Claims take the highest priority first (SPEC §10): the claim index orders each
            // label set by priority, then age. Rows from before are priority 0.
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
                    DROP INDEX tasks_queued_by_labels;
                    """)
            try db.execute(sql: ClaimSQL.queuedByPriorityIndex)
        }
        migrator.registerMigration("v18-concurrency-keys") { db in
            // A run's concurrency key and where it stands in the key's line (SPEC §10); NULL
            // for runs from before and runs without a key, so the line's index skips them.
            try db.execute(
                sql: """
                    ALTER TABLE runs ADD COLUMN concurrency_key TEXT;
                    ALTER TABLE runs ADD COLUMN concurrency_slot TEXT;
                    """)
            try db.execute(sql: ConcurrencySQL.index)
        }
        return migrator
    }
}
