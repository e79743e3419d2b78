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
            Route(.get, "/v1/webhooks/:id", role: .client, show),
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
        case .failure(let failure): throw failure
        }
        let webhook = try await service.createWebhook(definition)
        var item = Self.item(webhook)
        item.secret = webhook.secret  // shown only here
        return .json(item, status: .created, headers: [.location: "/v1/webhooks/" + webhook.id])
    }

    @Sendable func list(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let page = try await service.webhooks(limit: try request.limit(default: 50, maximum: 500), after: request.query("cursor"))
        return .json(Page(items: page.items.map(Self.item), nextCursor: page.nextCursor))
    }

    /// The subscription a create's `Location` names (its secret is never shown again).
    @Sendable func show(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        .json(Self.item(try await service.webhook(try context.parameters.require("id"))))
    }

    @Sendable func delete(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        try await service.deleteWebhook(try context.parameters.require("id"))
        return Response(status: .noContent)
    }

    @Sendable func deliveries(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let page = try await service.deliveries(
            webhookID: try context.parameters.require("id"), limit: try request.limit(default: 50, maximum: 500),
            before: request.query("cursor"))
        return .json(Page(items: page.items.map(Self.item), nextCursor: page.nextCursor))
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
        guard reader.errors.isEmpty, let since else { throw ValidationFailure(reader.errors) }
        let count = try await service.recoverDeliveries(webhookID: webhookID, since: since)
        return .json(RecoverResult(requeued: count), status: .accepted)
    }

    @Sendable func retry(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        try await service.retryDelivery(id)
        return .json(Self.item(try await service.delivery(id)), status: .accepted)
    }

    static func item(_ webhook: Webhook) -> WebhookItem {
        WebhookItem(
            id: webhook.id, url: webhook.url, events: webhook.events, description: webhook.description,
            status: webhook.isActive ? .active : .disabled, disabledReason: webhook.disabledReason,
            createdAt: webhook.createdAt.iso8601)
    }

    static func item(_ delivery: Delivery) -> DeliveryItem {
        DeliveryItem(
            id: delivery.id, webhookID: delivery.webhookID, eventID: delivery.eventID, seq: delivery.eventSeq,
            runID: Outbox.runID(ofLane: delivery.runID), type: delivery.type, status: delivery.status,
            attempts: delivery.attempts.map {
                DeliveryAttemptItem(at: $0.at.iso8601, statusCode: $0.statusCode, latencyMs: $0.latencyMs, error: $0.error)
            },
            nextAttemptAt: delivery.nextAttemptAt?.iso8601, createdAt: delivery.createdAt.iso8601)
    }
}
