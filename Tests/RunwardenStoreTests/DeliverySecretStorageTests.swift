import Foundation
import GRDB
import Logging
import PostgresNIO
import RunwardenCore
import RunwardenStore
@testable import RunwardenStorePostgres
@testable import RunwardenStoreSQLite
import RunwardenTestSupport
import Testing

/// Webhook secrets live in one row each — the subscription's, or the run's — and never in
/// the outbox (SPEC §6): every column of every delivery row is read back and searched.
@Suite("Delivery rows keep no secrets")
struct DeliverySecretStorageTests {
    static func secret() -> String { "whsec_" + Data((0..<32).map { _ in UInt8.random(in: .min ... .max) }).base64EncodedString() }

    @Test("SQLite: new delivery rows hold no secret, and the migration clears the copies old rows held")
    func sqlite() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let oldSecret = Self.secret()
        do {  // a database as the release before this one left it: a copy of the secret per delivery
            let queue = try DatabaseQueue(path: path)
            try SQLiteSchema.migrator.migrate(queue, upTo: "v5-delivery-leases")
            try await queue.write { db in
                try db.execute(
                    sql: "INSERT INTO webhooks VALUES ('wh_old', 'https://old.example/', '[\"*\"]', ?, NULL, 1, NULL, 0)",
                    arguments: [oldSecret])
                try db.execute(
                    sql: """
                        INSERT INTO deliveries VALUES ('dlv_old', 'wh_old', 'run_old', 'evt_old', 1, 'run.created',
                            'https://old.example/', ?, X'7B7D', 'pending', '[]', 0, 0, NULL)
                        """,
                    arguments: [oldSecret])
            }
        }
        let store = try await SQLiteRunStore.open(path: path)
        let secrets = try await Self.writeDeliveries(store) + [oldSecret]
        let rows = try await store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM deliveries").map { row in
                row.columnNames.map { column -> String in
                    let value: DatabaseValue = row[column]
                    switch value.storage {
                    case .string(let text): return text
                    case .blob(let data): return String(decoding: data, as: UTF8.self)
                    default: return value.description
                    }
                }.joined(separator: "|")
            }
        }
        Self.expectNoSecret(rows, secrets, expectedRows: 4)  // the old row; wh_old, wh_new and the callback get run.created
    }

    @Test("PostgreSQL: new delivery rows hold no secret, and the migration drops the copies old rows held")
    func postgres() async throws {
        let url = try await PostgresTestCluster.database()
        let store = try await openPostgresStore(url: url, maxConnections: 4, migratedThrough: 3)
        let oldSecret = Self.secret()
        try await store.transaction(.write) { tx in
            try await tx.execute(
                "INSERT INTO webhooks VALUES ('wh_old', 'https://old.example/', '[\"*\"]', \(oldSecret), NULL, TRUE, NULL, 0)")
            try await tx.execute(
                """
                INSERT INTO deliveries (id, webhook_id, run_id, event_id, event_seq, type, url, secret, payload, status, attempts,
                                        next_attempt_at, created_at)
                VALUES ('dlv_old', 'wh_old', 'run_old', 'evt_old', 1, 'run.created', 'https://old.example/', \(oldSecret),
                        '\\x7b7d'::bytea, 'pending', '[]', 0, 0)
                """)
        }
        try await store.migrate()
        let secrets = try await Self.writeDeliveries(store) + [oldSecret]
        let rows = try await store.transaction(.read) { tx in
            try await tx.rows("SELECT row_to_json(d)::text FROM deliveries d").map { try $0.decode(String.self) }
        }
        Self.expectNoSecret(rows, secrets, expectedRows: 4)  // the old row; wh_old, wh_new and the callback get run.created
    }

    /// A subscription and a run with a callback: one delivery each. Returns both secrets.
    static func writeDeliveries(_ store: any RunStore) async throws -> [String] {
        let subscriptionSecret = secret()
        let callbackSecret = secret()
        try await store.createWebhook(
            Webhook(id: "wh_new", url: "https://new.example/", events: ["run.created"], secret: subscriptionSecret, description: nil, createdAt: t0))
        let spec = RunSpec(workflow: "deploy", callbackURL: "https://ci.example/hook", callbackSecret: callbackSecret)
        let (run, event) = Run.create(
            RunDefinition(run: spec, tasks: [task("a")]), id: Identifier.make(.run, at: t0), taskIDs: [Identifier.make(.task, at: t0)],
            eventID: Identifier.make(.evt, at: t0), now: t0)
        _ = try await store.createRun(run, event: event, idempotency: nil)
        return [subscriptionSecret, callbackSecret]
    }

    static func expectNoSecret(_ rows: [String], _ secrets: [String], expectedRows: Int) {
        #expect(rows.count == expectedRows, "\(rows)")
        for secret in secrets {
            // The key alone too: a copy without its `whsec_` prefix is a copy.
            let key = String(secret.dropFirst("whsec_".count))
            #expect(!rows.contains { $0.contains(key) }, "a delivery row holds a secret: \(rows)")
        }
    }
}
