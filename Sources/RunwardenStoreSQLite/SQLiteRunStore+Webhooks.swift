import Foundation
import GRDB
import RunwardenCore
import RunwardenStore

/// Subscriptions and the delivery outbox on SQLite.
extension SQLiteRunStore {
    public func createWebhook(_ webhook: Webhook) async throws {
        try await writing { db in
            try db.execute(
                sql: """
                    INSERT INTO webhooks (id, url, events, secret, description, active, disabled_reason, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    webhook.id, webhook.url, try JSONColumn.encode(webhook.events), webhook.secret, webhook.description,
                    webhook.isActive, webhook.disabledReason, webhook.createdAt.milliseconds,
                ])
        }
    }

    public func webhook(id: String) async throws -> Webhook? {
        try await reading { db in
            try Row.fetchOne(db, sql: "SELECT * FROM webhooks WHERE id = ?", arguments: [id]).map(Self.webhook)
        }
    }

    public func webhooks(limit: Int, after: String?) async throws -> (items: [Webhook], nextCursor: String?) {
        try await reading { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM webhooks WHERE id > ? ORDER BY id LIMIT ?", arguments: [after ?? "", limit + 1])
            let items = try rows.prefix(limit).map(Self.webhook)
            return (items, rows.count > limit ? items.last?.id : nil)
        }
    }

    public func deleteWebhook(id: String, now: Timestamp) async throws -> Bool {
        try await writing { db in
            try db.execute(sql: "DELETE FROM webhooks WHERE id = ?", arguments: [id])
            guard db.changesCount > 0 else { return false }
            try db.execute(
                sql: "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE webhook_id = ? AND status = 'pending'",
                arguments: [id])
            return true
        }
    }

    public func delivery(id: String) async throws -> Delivery? {
        try await reading { db in
            try Row.fetchOne(db, sql: "SELECT * FROM deliveries WHERE id = ?", arguments: [id]).map(Self.delivery)
        }
    }

    public func deliveries(webhookID: String, limit: Int, before: String?) async throws -> (items: [Delivery], nextCursor: String?) {
        try await reading { db in
            let rows: [Row]
            if let before {
                rows = try Row.fetchAll(
                    db, sql: "SELECT * FROM deliveries WHERE webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                    arguments: [webhookID, before, limit + 1])
            } else {
                rows = try Row.fetchAll(
                    db, sql: "SELECT * FROM deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
                    arguments: [webhookID, limit + 1])
            }
            let items = try rows.prefix(limit).map(Self.delivery)
            return (items, rows.count > limit ? items.last?.id : nil)
        }
    }

    public func dueDeliveries(now: Timestamp, limit: Int) async throws -> [Delivery] {
        try await reading { db in
            try Row.fetchAll(
                db, sql: DeliverySQL.oldestDuePerURL(columns: "deliveries.*", now: "?", limit: "?"), arguments: [now.milliseconds, limit]
            ).map(Self.delivery)
        }
    }

    public func dueDeliveries(url: String, now: Timestamp, limit: Int) async throws -> [Delivery] {
        try await reading { db in
            try Row.fetchAll(
                db.cachedStatement(sql: DeliverySQL.dueHeadsPerRun(columns: "deliveries.*", url: "?1", now: "?2", limit: "?3")),
                arguments: [url, now.milliseconds, limit]
            ).map(Self.delivery)
        }
    }

    public func recordAttempt(deliveryID: String, _ attempt: DeliveryAttempt, verdict: DeliveryVerdict) async throws {
        try await writing { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM deliveries WHERE id = ?", arguments: [deliveryID]) else {
                return
            }
            var delivery = try Self.delivery(row)
            var verdict = verdict
            if case .retry = verdict, let webhookID = delivery.webhookID,
                try Bool.fetchOne(db, sql: "SELECT active FROM webhooks WHERE id = ?", arguments: [webhookID]) != true
            {
                verdict = .failed  // the subscription was deleted or disabled while this attempt ran
            }
            delivery.record(attempt, verdict: verdict)
            try db.execute(
                sql: "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, leased_until = NULL WHERE id = ?",
                arguments: [
                    delivery.status.rawValue, try JSONColumn.encode(delivery.attempts), delivery.nextAttemptAt?.milliseconds,
                    deliveryID,
                ])
            switch verdict {
            case .succeeded:
                // The receiver answers again: what waits for it need not wait out its backoff
                // (but what another dispatcher is attempting right now stays with it).
                try db.execute(
                    sql: """
                        UPDATE deliveries SET next_attempt_at = ?
                        WHERE url = ? AND status = 'pending' AND next_attempt_at > ? AND (leased_until IS NULL OR leased_until <= ?)
                        """,
                    arguments: [attempt.at.milliseconds, delivery.url, attempt.at.milliseconds, attempt.at.milliseconds])
            case .failedAndDisable(let reason):
                if let webhookID = delivery.webhookID {
                    try db.execute(
                        sql: "UPDATE webhooks SET active = 0, disabled_reason = ? WHERE id = ?", arguments: [reason, webhookID])
                    try db.execute(
                        sql: "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE webhook_id = ? AND status = 'pending'",
                        arguments: [webhookID])
                }
            case .retry, .failed:
                break
            }
        }
    }

    public func leaseDelivery(id: String, now: Timestamp, until: Timestamp) async throws -> DeliveryLease? {
        try await writing { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT d.webhook_id, d.run_id, w.secret, w.active FROM deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id
                        WHERE d.id = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
                        """,
                    arguments: [id, now.milliseconds])
            else { return nil }
            let secret: String?
            if row["webhook_id"] as String? != nil {
                guard row["active"] as Bool? == true else {
                    // Deleted or disabled after this row was written: nothing more is sent.
                    try db.execute(sql: "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE id = ?", arguments: [id])
                    return nil
                }
                secret = row["secret"]
            } else {
                let runID: String = row["run_id"]
                let spec = try String.fetchOne(db, sql: "SELECT spec FROM runs WHERE id = ?", arguments: [runID])
                secret = try spec.flatMap { try JSONColumn.runSpecs.decode($0, row: runID).callbackSecret }
            }
            try db.execute(
                sql: "UPDATE deliveries SET next_attempt_at = ?, leased_until = ? WHERE id = ?",
                arguments: [until.milliseconds, until.milliseconds, id])
            return DeliveryLease(secret: secret)
        }
    }

    public func retryDelivery(id: String, now: Timestamp) async throws -> DeliveryRetry {
        try await writing { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT d.webhook_id, w.active FROM deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?",
                    arguments: [id])
            else { return .unknown }
            if row["webhook_id"] as String? != nil, row["active"] as Bool? != true { return .inactive }
            try db.execute(
                sql: """
                    UPDATE deliveries SET status = 'pending',
                        next_attempt_at = CASE WHEN leased_until > ? THEN next_attempt_at ELSE ? END
                    WHERE id = ?
                    """,
                arguments: [now.milliseconds, now.milliseconds, id])
            return .requeued
        }
    }

    public func recoverDeliveries(webhookID: String, since: Timestamp, now: Timestamp) async throws -> Int {
        try await writing { db in
            try db.execute(
                sql: """
                    UPDATE deliveries SET status = 'pending', next_attempt_at = ?
                    WHERE webhook_id = ? AND status = 'failed' AND created_at >= ?
                      AND EXISTS (SELECT 1 FROM webhooks WHERE id = ? AND active)
                    """,
                arguments: [now.milliseconds, webhookID, since.milliseconds, webhookID])
            return db.changesCount
        }
    }

    static func webhook(_ row: Row) throws -> Webhook {
        Webhook(
            id: row["id"], url: row["url"], events: try JSONColumn.decode([String].self, row["events"]), secret: row["secret"],
            description: row["description"], isActive: row["active"], disabledReason: row["disabled_reason"],
            createdAt: Timestamp(milliseconds: row["created_at"]))
    }

    static func delivery(_ row: Row) throws -> Delivery {
        Delivery(
            id: row["id"], webhookID: row["webhook_id"], runID: row["run_id"], eventID: row["event_id"], eventSeq: row["event_seq"],
            type: row["type"], url: row["url"], payload: row["payload"],
            status: DeliveryStatus(rawValue: row["status"]) ?? .pending,
            attempts: try JSONColumn.decode([DeliveryAttempt].self, row["attempts"]),
            nextAttemptAt: Timestamp(column: row["next_attempt_at"]), createdAt: Timestamp(milliseconds: row["created_at"]))
    }
}
