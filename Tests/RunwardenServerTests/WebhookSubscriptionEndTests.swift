import Foundation
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import Testing

/// A deleted or disabled subscription sends nothing more (SPEC §6): its pending deliveries
/// get no further attempt, a manual retry is `409 webhook_inactive`, and its delivery log
/// stays readable.
@Suite("Webhook subscriptions that end")
struct WebhookSubscriptionEndTests {
    @Test("Deleting a subscription stops its pending deliveries; their log stays; retry is 409 webhook_inactive")
    func deletedSubscriptionSendsNothingMore() async throws {
        try await withDeliveryApp(retry: [300, 300, 300, 300, 300, 300]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], status: 503)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let retrying = try await client.waitForDeliveryLog(webhookID) { $0.first?.attempts.isEmpty == false }
            let deleted = try await client.send(.delete, "/v1/webhooks/\(webhookID)")
            let attemptsAtDelete = receiver.requests().count
            // Absence cannot be polled for: wait out several retry intervals (300 ms each).
            try await Task.sleep(for: .milliseconds(1_500))
            let log = try await client.waitForDeliveryLog(webhookID) { $0.first?.deliveryStatus == "failed" }
            let deliveryID = log.first?["id"]?.asString ?? ""
            let retry = try await client.send(.post, "/v1/deliveries/\(deliveryID)/retry")
            let recover = try await client.send(.post, "/v1/webhooks/\(webhookID)/recover", json: #"{"since":"2020-01-01T00:00:00Z"}"#)
            try await Task.sleep(for: .milliseconds(700))  // a retry, had it been taken, is attempted at once

            #expect(retrying.first?.deliveryStatus == "pending", "\(retrying)")
            #expect(deleted.status == .noContent)
            #expect(receiver.requests().count <= attemptsAtDelete + 1, "attempted after the delete: \(receiver.requests())")
            #expect(log.count == 1 && log.first?.deliveryStatus == "failed", "\(log)")
            #expect(log.first?["next_attempt_at"]?.isNull == true)
            try expectError(retry, .conflict, "webhook_inactive")
            try expectError(recover, .notFound, "webhook_not_found")
            #expect(receiver.requests().count <= attemptsAtDelete + 1, "a retry of a deleted subscription's delivery was sent")
        }
    }

    @Test("A subscription disabled by 410 Gone: retry and recover are 409 webhook_inactive and nothing is sent")
    func disabledSubscriptionSendsNothingMore() async throws {
        try await withDeliveryApp { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], status: 410)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let disabled = try await waitForWebhookStatus(client, webhookID, "disabled")
            let deliveryID = try await client.deliveryLog(webhookID).first?["id"]?.asString ?? ""
            let retry = try await client.send(.post, "/v1/deliveries/\(deliveryID)/retry")
            let recover = try await client.send(.post, "/v1/webhooks/\(webhookID)/recover", json: #"{"since":"2020-01-01T00:00:00Z"}"#)
            try await Task.sleep(for: .milliseconds(700))  // a retry, had it been taken, is attempted at once

            #expect(disabled?["status"]?.asString == "disabled")
            try expectError(retry, .conflict, "webhook_inactive")
            try expectError(recover, .conflict, "webhook_inactive")
            #expect(receiver.requests().count == 1, "\(receiver.requests())")
        }
    }

    @Test("Retrying an unknown delivery is 404 delivery_not_found; an unknown subscription's log is 404 webhook_not_found")
    func unknownIDs() async throws {
        try await withApp { client in
            try expectError(try await client.send(.post, "/v1/deliveries/dlv_unknown/retry"), .notFound, "delivery_not_found")
            try expectError(try await client.send(.get, "/v1/webhooks/wh_unknown/deliveries"), .notFound, "webhook_not_found")
        }
    }
}
