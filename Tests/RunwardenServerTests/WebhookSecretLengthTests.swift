import Foundation
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import Testing

/// A given secret must decode to 24–64 bytes after `whsec_` (SPEC §6, Standard Webhooks).
@Suite("Webhook secret length")
struct WebhookSecretLengthTests {
    static func secret(bytes: Int) -> String {
        "whsec_" + Data((0..<bytes).map { _ in UInt8.random(in: .min ... .max) }).base64EncodedString()
    }

    @Test("A subscription secret of 23 or 65 bytes is 422; 24 and 64 are accepted", arguments: [(23, false), (24, true), (64, true), (65, false), (0, false)])
    func subscriptionSecret(bytes: Int, accepted: Bool) async throws {
        try await withApp { client in
            let body = #"{"url":"https://hooks.example/x","secret":"\#(Self.secret(bytes: bytes))"}"#
            let response = try await client.send(.post, "/v1/webhooks", json: body)
            if accepted {
                #expect(response.status == .created, "body: \(response.text)")
            } else {
                try expectError(response, .unprocessableContent, "validation_failed")
                #expect(try response.errorObject()?["details"]?.asArray?.first?["field"]?.asString == "secret")
            }
        }
    }

    @Test("A run's callback_secret of 23 or 65 bytes is 422; 24 and 64 are accepted", arguments: [(23, false), (24, true), (64, true), (65, false)])
    func callbackSecret(bytes: Int, accepted: Bool) async throws {
        try await withApp { client in
            let extra = #""callback_url":"https://ci.example/hook","callback_secret":"\#(Self.secret(bytes: bytes))""#
            let response = try await client.send(.post, "/v1/runs", json: runBody(tasks: "[\(taskJSON("build"))]", extra: extra))
            if accepted {
                #expect(response.status == .accepted, "body: \(response.text)")
            } else {
                try expectError(response, .unprocessableContent, "validation_failed")
                #expect(try response.errorObject()?["details"]?.asArray?.first?["field"]?.asString == "callback_secret")
            }
        }
    }
}
