import Foundation
import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Subscriptions and the delivery outbox on PostgreSQL.
extension PostgresRunStore {
    static let webhookColumns = "id, url, events, secret, description, active, disabled_reason, created_at"
    static let deliveryColumns = """
        id, webhook_id, run_id, event_id, event_seq, type, url, payload, status, attempts, next_attempt_at, created_at
        """
    static let qualifiedDeliveryColumns = deliveryColumns.split(separator: ",")
        .map { "deliveries." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")

    public func createWebhook(_ webhook: Webhook) async throws {
        try await transaction(.write) { tx in
            try await tx.execute(
                """
                INSERT INTO webhooks (id, url, events, secret, description, active, disabled_reason, created_at)
                VALUES (\(webhook.id), \(webhook.url), \(try JSONColumn.encode(webhook.events)), \(webhook.secret),
                        \(webhook.description), \(webhook.isActive), \(webhook.disabledReason), \(webhook.createdAt.milliseconds))
                """)
        }
    }

    public func webhook(id: String) async throws -> Webhook? {
        try await transaction(.read) { tx in
            try await tx.rows("SELECT \(unescaped: Self.webhookColumns) FROM webhooks WHERE id = \(id)").first.map(Self.webhook)
        }
    }

    public func webhooks(limit: Int, after: String?) async throws -> (items: [Webhook], nextCursor: String?) {
        let limit = max(0, limit)
        let page = try await transaction(.read) { tx in
            try await tx.rows(
                "SELECT \(unescaped: Self.webhookColumns) FROM webhooks WHERE id > \(after ?? "") ORDER BY id LIMIT \(limit + 1)"
            ).map(Self.webhook)
        }
        let items = Array(page.prefix(limit))
        return (items, page.count > limit ? items.last?.id : nil)
    }

    public func deleteWebhook(id: String, now: Timestamp) async throws -> Bool {
        try await transaction(.write) { tx in
            guard try await !tx.rows("DELETE FROM webhooks WHERE id = \(id) RETURNING id").isEmpty else { return false }
            try await tx.execute(
                "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE webhook_id = \(id) AND status = 'pending'")
            return true
        }
    }

    public func delivery(id: String) async throws -> Delivery? {
        try await transaction(.read) { tx in
            try await tx.rows("SELECT \(unescaped: Self.deliveryColumns) FROM deliveries WHERE id = \(id)").first.map(Self.delivery)
        }
    }

    public func deliveries(webhookID: String, limit: Int, before: String?) async throws -> (items: [Delivery], nextCursor: String?) {
        let limit = max(0, limit)
        let page = try await transaction(.read) { tx in
            if let before {
                try await tx.rows(
                    """
                    SELECT \(unescaped: Self.deliveryColumns) FROM deliveries WHERE webhook_id = \(webhookID) AND id < \(before)
                    ORDER BY id DESC LIMIT \(limit + 1)
                    """
                ).map(Self.delivery)
            } else {
                try await tx.rows(
                    """
                    SELECT \(unescaped: Self.deliveryColumns) FROM deliveries WHERE webhook_id = \(webhookID)
                    ORDER BY id DESC LIMIT \(limit + 1)
                    """
                ).map(Self.delivery)
            }
        }
        let items = Array(page.prefix(limit))
        return (items, page.count > limit ? items.last?.id : nil)
    }

    public func dueDeliveries(now: Timestamp, limit: Int) async throws -> [Delivery] {
        var binds = PostgresBindings()
        binds.append(now.milliseconds)
        binds.append(Int64(max(0, limit)))
        let query = PostgresQuery(
            unsafeSQL: DeliverySQL.oldestDuePerURL(columns: Self.qualifiedDeliveryColumns, now: "$1", limit: "$2"), binds: binds)
        return try await transaction(.read) { tx in try await tx.rows(query).map(Self.delivery) }
    }

    public func dueDeliveries(url: String, now: Timestamp, limit: Int) async throws -> [Delivery] {
        var binds = PostgresBindings()
        binds.append(url)
        binds.append(now.milliseconds)
        binds.append(Int64(max(0, limit)))
        let query = PostgresQuery(
            unsafeSQL: DeliverySQL.dueHeadsPerRun(columns: Self.qualifiedDeliveryColumns, url: "$1", now: "$2", limit: "$3"),
            binds: binds)
        return try await transaction(.read) { tx in try await tx.rows(query).map(Self.delivery) }
    }

    public func recordAttempt(deliveryID: String, _ attempt: DeliveryAttempt, verdict: DeliveryVerdict) async throws {
        try await transaction(.write) { tx in
            guard
                var delivery = try await tx.rows(
                    "SELECT \(unescaped: Self.deliveryColumns) FROM deliveries WHERE id = \(deliveryID) FOR UPDATE"
                ).first.map(Self.delivery)
            else { return }
            var verdict = verdict
            if case .retry = verdict, let webhookID = delivery.webhookID,
                try await tx.rows("SELECT 1 FROM webhooks WHERE id = \(webhookID) AND active").isEmpty
            {
                verdict = .failed  // the subscription was deleted or disabled while this attempt ran
            }
            delivery.record(attempt, verdict: verdict)
            try await tx.execute(
                """
                UPDATE deliveries SET status = \(delivery.status.rawValue), attempts = \(try JSONColumn.encode(delivery.attempts)),
                    next_attempt_at = \(delivery.nextAttemptAt?.milliseconds), leased_until = NULL
                WHERE id = \(deliveryID)
                """)
            switch verdict {
            case .succeeded:
                // The receiver answers again: what waits for it need not wait out its backoff
                // (but what another node is attempting right now stays with it).
                let madeDue = try await tx.rows(
                    """
                    UPDATE deliveries SET next_attempt_at = \(attempt.at.milliseconds)
                    WHERE url = \(delivery.url) AND status = 'pending' AND next_attempt_at > \(attempt.at.milliseconds)
                      AND (leased_until IS NULL OR leased_until <= \(attempt.at.milliseconds))
                    RETURNING id
                    """)
                if !madeDue.isEmpty { tx.notify(.deliveries) }
            case .failedAndDisable(let reason):
                if let webhookID = delivery.webhookID {
                    try await tx.execute("UPDATE webhooks SET active = FALSE, disabled_reason = \(reason) WHERE id = \(webhookID)")
                    try await tx.execute(
                        """
                        UPDATE deliveries SET status = 'failed', next_attempt_at = NULL
                        WHERE webhook_id = \(webhookID) AND status = 'pending'
                        """)
                }
            case .retry, .failed:
                break
            }
        }
    }

    public func leaseDelivery(id: String, now: Timestamp, until: Timestamp) async throws -> DeliveryLease? {
        try await transaction(.write) { tx in
            guard
                let row = try await tx.rows(
                    """
                    SELECT d.webhook_id, d.run_id, w.secret, w.active FROM deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id
                    WHERE d.id = \(id) AND d.status = 'pending' AND d.next_attempt_at <= \(now.milliseconds)
                    FOR UPDATE OF d
                    """
                ).first
            else { return nil }
            let (webhookID, runID, webhookSecret, active) = try row.decode((String?, String, String?, Bool?).self)
            let secret: String?
            if webhookID != nil {
                guard active == true else {
                    // Deleted or disabled after this row was written: nothing more is sent.
                    try await tx.execute("UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE id = \(id)")
                    return nil
                }
                secret = webhookSecret
            } else {
                let spec = try await tx.rows("SELECT spec FROM runs WHERE id = \(runID)").first?.decode(String.self)
                secret = try spec.flatMap { try JSONColumn.runSpecs.decode($0, row: runID).callbackSecret }
            }
            try await tx.execute(
                "UPDATE deliveries SET next_attempt_at = \(until.milliseconds), leased_until = \(until.milliseconds) WHERE id = \(id)")
            return DeliveryLease(secret: secret)
        }
    }

    public func retryDelivery(id: String, now: Timestamp) async throws -> DeliveryRetry {
        try await transaction(.write) { tx in
            guard
                let row = try await tx.rows(
                    """
                    SELECT d.webhook_id, w.active FROM deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id
                    WHERE d.id = \(id) FOR UPDATE OF d
                    """
                ).first
            else { return .unknown }
            let (webhookID, active) = try row.decode((String?, Bool?).self)
            if webhookID != nil, active != true { return .inactive }
            try await tx.execute(
                """
                UPDATE deliveries SET status = 'pending',
                    next_attempt_at = CASE WHEN leased_until > \(now.milliseconds) THEN next_attempt_at ELSE \(now.milliseconds) END
                WHERE id = \(id)
                """)
            tx.notify(.deliveries)
            return .requeued
        }
    }

    public func recoverDeliveries(webhookID: String, since: Timestamp, now: Timestamp) async throws -> Int {
        try await transaction(.write) { tx in
            let count = try await tx.rows(
                """
                UPDATE deliveries SET status = 'pending', next_attempt_at = \(now.milliseconds)
                WHERE webhook_id = \(webhookID) AND status = 'failed' AND created_at >= \(since.milliseconds)
                  AND EXISTS (SELECT 1 FROM webhooks WHERE id = \(webhookID) AND active)
                RETURNING id
                """
            ).count
            if count > 0 { tx.notify(.deliveries) }
            return count
        }
    }

    static func webhook(_ row: PostgresRow) throws -> Webhook {
        let (id, url, events, secret, description, active, disabledReason, createdAt) = try row.decode(
            (String, String, String, String, String?, Bool, String?, Int64).self)
        return Webhook(
            id: id, url: url, events: try JSONColumn.decode([String].self, events), secret: secret, description: description,
            isActive: active, disabledReason: disabledReason, createdAt: Timestamp(milliseconds: createdAt))
    }

    static func delivery(_ row: PostgresRow) throws -> Delivery {
        let (id, webhookID, runID, eventID, eventSeq, type, url, payload, status, attempts, nextAttemptAt, createdAt) =
            try row.decode((String, String?, String, String, Int64, String, String, Data, String, String, Int64?, Int64).self)
        return Delivery(
            id: id, webhookID: webhookID, runID: runID, eventID: eventID, eventSeq: eventSeq, type: type, url: url, payload: payload, status: DeliveryStatus(rawValue: status) ?? .pending,
            attempts: try JSONColumn.decode([DeliveryAttempt].self, attempts),
            nextAttemptAt: Timestamp(column: nextAttemptAt), createdAt: Timestamp(milliseconds: createdAt))
    }
}
