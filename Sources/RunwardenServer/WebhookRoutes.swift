import Foundation
import Hummingbird
import RunwardenCore
import RunwardenStore

/// Subscriptions, their delivery log, manual redelivery and recovery (SPEC §3).
struct WebhookRoutes {
    let service: RunService
    let maxBody: Int
    /// Where a subscription may point (`--webhook-deny`, `--webhook-allow`).
    let egress: EgressPolicy

    var routes: [Route] {
        [
            Route(.post, "/v1/webhooks", role: .client, create),
            Route(.get, "/v1/webhooks", role: .client, list),
            Route(.delete, "/v1/webhooks/:id", role: .client, delete),
            Route(.get, "/v1/webhooks/:id/deliveries", role: .client, deliveries),
            Route(.post, "/v1/webhooks/:id/recover", role: .client, recover),
            Route(.post, "/v1/deliveries/:id/retry", role: .client, retry),
        ]
    }

    @Sendable func create(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let definition: WebhookDefinition
        switch WebhookDefinition.parse(try await request.jsonBody(limit: maxBody), egress: egress) {
        case .success(let parsed): definition = parsed
        case .failure(let failure): throw APIError.validation(failure)
        }
        let webhook = try await service.createWebhook(definition)
        guard case .object(var members) = Self.json(webhook) else { return .json(Self.json(webhook), status: .created) }
        members.insert(.init("secret", .string(webhook.secret)), at: 3)  // shown only here
        return .json(.object(members), status: .created, headers: [.location: "/v1/webhooks/" + webhook.id])
    }

    @Sendable func list(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let page = try await service.store.webhooks(limit: try request.limit(default: 50, maximum: 500), after: request.query("cursor"))
        return .json(.object(["items": .array(page.items.map(Self.json)), "next_cursor": JSONValue(page.nextCursor)]))
    }

    @Sendable func delete(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        try await service.deleteWebhook(try context.parameters.require("id"))
        return Response(status: .noContent)
    }

    /// The log outlives its subscription: a deleted subscription's deliveries stay listed
    /// under its id (SPEC §6); an id that never had any is `404 webhook_not_found`.
    @Sendable func deliveries(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let webhookID = try context.parameters.require("id")
        let cursor = request.query("cursor")
        let page = try await service.store.deliveries(
            webhookID: webhookID, limit: try request.limit(default: 50, maximum: 500), before: cursor)
        if page.items.isEmpty, cursor == nil { _ = try await service.webhook(webhookID) }
        return .json(.object(["items": .array(page.items.map(Self.json)), "next_cursor": JSONValue(page.nextCursor)]))
    }

    @Sendable func recover(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let webhookID = try context.parameters.require("id")
        let body = try await request.jsonBody(limit: maxBody)
        var reader = FieldReader()
        var since: Timestamp?
        if reader.object(body, at: "", allowed: ["since"]) != nil,
            let text = reader.string(body, "since", at: "", required: true, maxLength: 64)
        {
            since = Timestamp(iso8601: text)
            if since == nil { reader.fail("since", "must be an ISO 8601 timestamp such as 2026-01-01T00:00:00.000Z") }
        }
        guard reader.errors.isEmpty, let since else { throw APIError.validation(ValidationFailure(reader.errors)) }
        let count = try await service.recoverDeliveries(webhookID: webhookID, since: since)
        return .json(.object(["requeued": .int(Int64(count))]), status: .accepted)
    }

    @Sendable func retry(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        try await service.retryDelivery(id)
        guard let delivery = try await service.store.delivery(id: id) else { throw APIError.notFound("delivery", id) }
        return .json(Self.json(delivery), status: .accepted)
    }

    static func json(_ webhook: Webhook) -> JSONValue {
        .object([
            "id": .string(webhook.id), "url": .string(webhook.url), "events": JSONValue(strings: webhook.events),
            "description": JSONValue(webhook.description), "status": .string(webhook.isActive ? "active" : "disabled"),
            "disabled_reason": JSONValue(webhook.disabledReason), "created_at": .string(webhook.createdAt.iso8601),
        ])
    }

    static func json(_ delivery: Delivery) -> JSONValue {
        .object([
            "id": .string(delivery.id), "webhook_id": JSONValue(delivery.webhookID), "event_id": .string(delivery.eventID),
            "seq": .int(delivery.eventSeq), "run_id": .string(delivery.runID), "type": .string(delivery.type),
            "status": .string(delivery.status.rawValue),
            "attempts": .array(
                delivery.attempts.map { attempt in
                    .object([
                        "at": .string(attempt.at.iso8601), "status_code": JSONValue(attempt.statusCode),
                        "latency_ms": .int(Int64(attempt.latencyMs)), "error": JSONValue(attempt.error),
                    ])
                }),
            "next_attempt_at": JSONValue(delivery.nextAttemptAt), "created_at": .string(delivery.createdAt.iso8601),
        ])
    }
}
