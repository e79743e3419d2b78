import Foundation
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import Testing

/// Webhook egress rules (SPEC §6): literal addresses in denied networks are refused when a
/// subscription or run is created; a name that resolves only to denied addresses fails the
/// attempt with `destination_not_allowed` before any connection; allow wins over deny.
@Suite("Webhook egress rules")
struct WebhookEgressTests {
    static let loopback = EgressPolicy(deny: EgressPolicy.networks("127.0.0.0/8,::1/128") ?? [])

    @Test(
        "A subscription or callback_url naming a denied address is 422 validation_failed",
        arguments: [
            "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://0.0.0.0:8080/", "http://[::]/",
            "http://224.0.0.1/", "http://[::ffff:169.254.169.254]/", "http://2852039166/", "http://0xA9.0xFE.0xA9.0xFE/",
        ])
    func literalDeniedAddress(url: String) async throws {
        try await withApp { client in
            let subscription = try await client.send(.post, "/v1/webhooks", json: #"{"url":"\#(url)"}"#)
            let run = try await client.send(
                .post, "/v1/runs", json: runBody(tasks: "[\(taskJSON("build"))]", extra: #""callback_url":"\#(url)""#))

            try expectError(subscription, .unprocessableContent, "validation_failed")
            #expect(try subscription.errorObject()?["details"]?.asArray?.first?["field"]?.asString == "url")
            try expectError(run, .unprocessableContent, "validation_failed")
            #expect(try run.errorObject()?["details"]?.asArray?.first?["field"]?.asString == "callback_url")
        }
    }

    @Test("A name resolving only to denied addresses fails the attempt with destination_not_allowed and no connection")
    func resolvedDeniedAddress() async throws {
        let receiver = try HostileReceiver(.silent)
        defer { receiver.stop() }
        try await withApp(setup: .live, { configuration in
            configuration.dispatchWebhooks = true
            configuration.webhookRetryMs = [200, 200]
            configuration.reaperInterval = nil
            configuration.webhookEgress = Self.loopback
        }) { client in
            let literal = try await client.send(.post, "/v1/webhooks", json: #"{"url":"\#(receiver.url())"}"#)
            let webhookID = try await client.subscribe(url: "http://localhost:\(receiver.port)/hook", events: ["run.created"])["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let log = try await client.waitForDeliveryLog(webhookID) { $0.first?.attempts.count == 2 }
            let attempts = log.first?.attempts ?? []

            try expectError(literal, .unprocessableContent, "validation_failed")
            #expect(attempts.count == 2, "retried like a network error: \(log)")
            #expect(attempts.allSatisfy { $0["error"]?.asString == "destination_not_allowed" && $0["status_code"]?.isNull == true }, "\(log)")
            #expect(receiver.connections == 0, "a connection reached the denied address")
        }
    }

    @Test("Allow wins over deny: a name resolving to an allowed address is delivered")
    func allowWinsOverDeny() async throws {
        let secret = makeWebhookSecret()
        let receiver = try await ScriptedReceiver.start(secrets: [secret])
        defer { receiver.stop() }
        try await withApp(setup: .live, { configuration in
            configuration.dispatchWebhooks = true
            configuration.reaperInterval = nil
            configuration.webhookEgress = EgressPolicy(deny: Self.loopback.deny, allow: EgressPolicy.networks("127.0.0.1/32") ?? [])
        }) { client in
            let webhookID = try await client.subscribe(
                url: "http://localhost:\(receiver.port)/hook", events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let log = try await client.waitForDeliveryLog(webhookID) { $0.first?.deliveryStatus == "succeeded" }
            let requests = receiver.requests()

            #expect(log.first?.deliveryStatus == "succeeded", "\(log)")
            #expect(requests.count == 1 && requests.allSatisfy(\.verified), "\(requests)")
        }
    }
}
