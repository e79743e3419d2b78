import Foundation
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import Testing

/// Receivers that answer with hostile headers, trickle, or never answer (SPEC §6): the server
/// stays up, the delivery is rescheduled within a day, and healthy receivers keep getting theirs.
@Suite("Webhook delivery to hostile receivers")
struct WebhookHostileReceiverTests {
    static let day: Int64 = 24 * 3_600_000

    /// `Retry-After` values a receiver might send with a 503, and the wait each must become:
    /// nil means "ask again soon" (the 200 ms schedule, or at once).
    @Test(
        "A hostile Retry-After cannot crash the server: the delivery is rescheduled within 24 h",
        arguments: [
            ("99999999999999999", day), ("Fri, 31 Dec 9999 23:59:59 GMT", day), ("Sat, 31 Dec 99999 23:59:59 GMT", day),
            ("86401.5", day), ("-5", nil), ("soon", nil), ("Mon, 01 Jan 1990 00:00:00 GMT", nil), ("1e999", nil),
        ] as [(String, Int64?)])
    func hostileRetryAfter(retryAfter: String, expectedWait: Int64?) async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], failFirst: 1, retryAfter: retryAfter)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let log = try await client.waitForDeliveryLog(webhookID) { log in
                expectedWait == nil ? log.first?.deliveryStatus == "succeeded" : log.first?.attempts.count == 1
            }
            let delivery = log.first
            let firstAttempt = milliseconds(delivery?.attempts.first?["at"]?.asString) ?? 0
            let health = try await client.send(.get, "/v1/webhooks")

            #expect(health.status == .ok, "the server stopped answering after Retry-After: \(retryAfter)")
            #expect(delivery?.attempts.first?["status_code"]?.asInt == 503)
            if let expectedWait {
                let next = milliseconds(delivery?["next_attempt_at"]?.asString) ?? 0
                #expect(delivery?.deliveryStatus == "pending", "\(log)")
                #expect(next - firstAttempt <= Self.day, "rescheduled \(next - firstAttempt) ms ahead")
                #expect(next - firstAttempt >= expectedWait - 5_000, "rescheduled only \(next - firstAttempt) ms ahead")
            } else {
                #expect(delivery?.deliveryStatus == "succeeded", "\(log)")
                #expect(delivery?.attempts.compactMap { $0["status_code"]?.asInt } == [503, 204])
            }
        }
    }

    @Test(
        "A receiver trickling its response is cut off by the attempt timeout, body included",
        arguments: [HostileReceiver.Behaviour.trickleBody, .trickleHead])
    func tricklingReceiverIsCutOff(behaviour: HostileReceiver.Behaviour) async throws {
        let receiver = try HostileReceiver(behaviour)
        defer { receiver.stop() }
        try await withTimeoutApp(attemptTimeout: .seconds(1)) { client in
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"])["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let log = try await client.waitForDeliveryLog(webhookID, timeout: .seconds(10)) { $0.first?.attempts.isEmpty == false }
            let attempt = log.first?.attempts.first

            #expect(receiver.requests >= 1, "the receiver never got the request")
            #expect(attempt?["error"]?.asString == "timed out", "\(log)")
            #expect((attempt?["latency_ms"]?.asInt ?? .max) < 5_000, "\(log)")
            #expect(log.first?.deliveryStatus == "pending", "a timed-out attempt is retried")
        }
    }

    /// `silent` accepts and never answers; `neverAccepts` leaves the handshake unanswered.
    @Test(
        "A black-holed receiver with hundreds of older due deliveries does not delay a healthy receiver",
        arguments: [HostileReceiver.Behaviour.silent, .neverAccepts])
    func blackHoleDoesNotDelayHealthyReceivers(behaviour: HostileReceiver.Behaviour) async throws {
        _ = try await ReferenceVerifier.python()
        let blackHole = try HostileReceiver(behaviour)
        defer { blackHole.stop() }
        try await withDeliveryApp(retry: [60_000]) { client in
            let blackHoleID = try await client.subscribe(url: blackHole.url(), events: ["run.created"])["id"]?.asString ?? ""
            for _ in 0..<250 { _ = try await client.createRun(oneTaskRun) }  // 250 due rows, all older than the healthy ones
            let secret = makeWebhookSecret()
            let healthy = try await ScriptedReceiver.start(secrets: [secret])
            defer { healthy.stop() }
            _ = try await client.subscribe(url: healthy.url(), events: ["run.created"], secret: secret)
            let started = ContinuousClock.now
            for _ in 0..<3 { _ = try await client.createRun(oneTaskRun) }
            let received = try await healthy.waitForRequests(timeout: .seconds(10)) { $0.count >= 3 }
            let elapsed = seconds(since: started)
            let blackHoleLog = try await client.deliveryLog(blackHoleID)
            let blackHoleConnections = blackHole.connections
            blackHole.stop()  // ends the attempt it holds, so the app shuts down at once

            #expect(received.count == 3 && received.allSatisfy { $0.verified }, "\(received)")
            #expect(elapsed < 4, "the healthy receiver waited \(elapsed) s behind the black hole")
            #expect(blackHoleLog.count == 253)
            #expect(blackHoleLog.allSatisfy { $0.deliveryStatus == "pending" })
            #expect(blackHoleLog.filter { !$0.attempts.isEmpty }.count <= 1, "the black hole held more than its one slot")
            if behaviour == .silent { #expect(blackHoleConnections == 1, "one attempt at a time holds the black hole's slot") }
        }
    }
}

/// `withDeliveryApp` with a shorter attempt timeout and a schedule that retries only much later.
func withTimeoutApp<Value: Sendable>(
    attemptTimeout: Duration, retry: [Int64] = [60_000], _ body: @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    try await withApp(setup: .live, { configuration in
        configuration.dispatchWebhooks = true
        configuration.webhookRetryMs = retry
        configuration.webhookAttemptTimeout = attemptTimeout
        configuration.reaperInterval = nil
    }, body)
}
