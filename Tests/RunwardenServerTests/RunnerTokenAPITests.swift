import Foundation
import HTTPTypes
import HummingbirdTesting
import RunwardenCore
import Testing

/// Per-runner tokens over HTTP (SPEC §8): shown once, scoped by name patterns and labels,
/// refused once revoked or expired; the shared runner token keeps working.
@Suite("per-runner tokens API")
struct RunnerTokenAPITests {
    /// Creates a token through the API; its id and secret.
    private func createToken(_ client: any TestClientProtocol, _ body: String) async throws -> (id: String, secret: String) {
        let response = try await client.send(.post, "/v1/runner-tokens", json: body, token: Tokens.client)
        #expect(response.status == .created, "\(response.text)")
        let item = try response.json()
        return (try #require(item["id"]?.asString), try #require(item["token"]?.asString))
    }

    @Test("a token is shown once as rwr_…, listed without its secret, and refused (401) from the request after its revocation")
    func createListRevoke() async throws {
        try await withTokenApp { client in
            let (id, secret) = try await createToken(client, #"{"description": "builders", "runner_names": ["build-*"], "labels": ["linux"]}"#)
            #expect(id.hasPrefix("rtk_"))
            #expect(secret.hasPrefix("rwr_"))
            let listed = try await client.send(.get, "/v1/runner-tokens", token: Tokens.client)
            #expect(!listed.text.contains(secret))
            let list = try listed.json()
            let item = try #require(list["items"]?.asArray?.first)
            #expect(item["id"]?.asString == id)
            #expect(item["token"] == nil, "the secret is never listed")
            #expect(item["runner_names"] == .array([.string("build-*")]))

            #expect(try await client.send(.post, "/v1/runners/build-1/claim", json: "{}", token: secret).status == .noContent)
            #expect(try await client.send(.delete, "/v1/runner-tokens/\(id)", token: Tokens.client).status == .noContent)
            try expectError(
                try await client.send(.post, "/v1/runners/build-1/heartbeat", json: #"{"tasks": []}"#, token: secret), .unauthorized,
                "unauthorized")
            try expectError(try await client.send(.delete, "/v1/runner-tokens/\(id)", token: Tokens.client), .notFound, "runner_token_not_found")
            // The shared runner token is untouched.
            #expect(try await client.send(.post, "/v1/runners/build-1/claim", json: "{}", token: Tokens.runner).status == .noContent)
        }
    }

    @Test("a token acts only as the names its patterns allow (403) and claims only tasks within its labels")
    func scope() async throws {
        try await withTokenApp { client in
            let (_, secret) = try await createToken(client, #"{"description": "linux builders", "runner_names": ["build-*"], "labels": ["linux"]}"#)
            try expectError(try await client.send(.post, "/v1/runners/deploy-1/claim", json: "{}", token: secret), .forbidden, "forbidden")
            try expectError(
                try await client.send(.post, "/v1/runners/deploy-1/heartbeat", json: #"{"tasks": []}"#, token: secret), .forbidden, "forbidden")
            try expectError(try await client.send(.post, "/v1/runners/deploy-1/goodbye", token: secret), .forbidden, "forbidden")
            try expectError(try await client.send(.get, "/v1/runners", token: secret), .forbidden, "forbidden")

            _ = try await client.createRun(runBody(tasks: "[\(taskJSON("gpu", extra: #""labels": ["gpu"]"#))]"), token: Tokens.client)
            let offered = try await client.send(.post, "/v1/runners/build-1/claim", json: #"{"labels": ["linux", "gpu"]}"#, token: secret)
            #expect(offered.status == .noContent, "a gpu task went to a token limited to linux")
            #expect(try await client.getJSON("/v1/runners/build-1", token: Tokens.client)["labels"] == .array([.string("linux")]))
            _ = try await client.createRun(runBody(tasks: "[\(taskJSON("lin", extra: #""labels": ["linux"]"#))]"), token: Tokens.client)
            let claimed = try await client.send(.post, "/v1/runners/build-1/claim", json: #"{"labels": ["linux", "gpu"]}"#, token: secret)
            #expect(claimed.status == .ok)
        }
    }

    @Test("a token reports only tasks claimed under a name it allows: another runner's task is 409 task_not_claimed")
    func reportOnlyOwnTasks() async throws {
        try await withTokenApp { client in
            let (_, secret) = try await createToken(client, #"{"description": "one host", "runner_names": ["build-1"]}"#)
            _ = try await client.createRun(oneTaskRun, token: Tokens.client)
            let taskID = try await client.claimTaskID(runner: "other-host", token: Tokens.runner)
            try expectError(try await client.report(taskID, reportBody("running"), token: secret), .conflict, "task_not_claimed")
            try expectError(try await client.report(taskID, reportBody("running"), runner: "other-host", token: secret), .forbidden, "forbidden")
            let snapshot = try await client.getJSON("/v1/tasks/\(taskID)", token: Tokens.client)
            #expect(snapshot["status"]?.asString == "dispatched", "a refused report changed nothing")
            try await client.reportOK(taskID, reportBody("running"), runner: "other-host", token: Tokens.runner)
        }
    }

    @Test("an expired token is 401; a bad create body is 422 and creates nothing")
    func expiryAndValidation() async throws {
        try await withTokenApp { client in
            let soon = Timestamp(Date()).adding(seconds: 1).iso8601
            let (_, secret) = try await createToken(client, #"{"description": "short-lived", "expires_at": "\#(soon)"}"#)
            #expect(try await client.send(.post, "/v1/runners/any/claim", json: "{}", token: secret).status == .noContent)
            let expired = await eventually(within: .seconds(5)) {
                (try? await client.send(.post, "/v1/runners/any/claim", json: "{}", token: secret).status) == .unauthorized
            }
            #expect(expired)
            let bad = try await client.send(
                .post, "/v1/runner-tokens", json: #"{"description": "", "runner_names": ["a/b"], "expires_at": "yesterday"}"#, token: Tokens.client)
            try expectError(bad, .unprocessableContent, "validation_failed")
            #expect(try await client.getJSON("/v1/runner-tokens", token: Tokens.client)["items"]?.asArray?.count == 1)
            try expectError(try await client.send(.post, "/v1/runner-tokens", json: #"{"description": "x"}"#, token: Tokens.runner), .forbidden, "forbidden")
        }
    }
}

/// Polls `condition` every 50 ms until it holds or `limit` passes.
private func eventually(within limit: Duration, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}
