import HTTPTypes
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import Testing

/// Bearer tokens (SPEC §2 "Authentication"), with client token `c-secret` and runner token `r-secret`.
@Suite("Authentication")
struct AuthTests {
    /// Routes that need the client token, and routes that need the runner token, as (method, path).
    static let clientRoutes: [(HTTPRequest.Method, String)] = [
        (.post, "/v1/runs"), (.get, "/v1/runs"), (.get, "/v1/runs/run_01JZZZZZZZZZZZZZZZZZZZZZZZ"), (.get, "/v1/events"),
        (.post, "/v1/runs/run_01JZZZZZZZZZZZZZZZZZZZZZZZ/cancel"), (.get, "/v1/locks"), (.delete, "/v1/locks/repo-a"),
        (.get, "/v1/tasks/task_01JZZZZZZZZZZZZZZZZZZZZZZZ"),
    ]
    static let runnerRoutes: [(HTTPRequest.Method, String)] = [
        (.post, "/v1/runners/host-a/claim"), (.post, "/v1/runners/host-a/heartbeat"),
        (.post, "/v1/tasks/task_01JZZZZZZZZZZZZZZZZZZZZZZZ/status"),
    ]

    @Test("A known path without a token answers 401 unauthorized", arguments: clientRoutes + runnerRoutes)
    func missingTokenIsUnauthorized(method: HTTPRequest.Method, path: String) async throws {
        try await withTokenApp { client in
            let response = try await client.send(method, path, json: "{}")

            try expectError(response, .unauthorized, "unauthorized")
        }
    }

    @Test("A wrong token answers 401 unauthorized", arguments: ["nope", "c-secretX", "c-secre", ""])
    func wrongTokenIsUnauthorized(token: String) async throws {
        try await withTokenApp { client in
            let response = try await client.send(.get, "/v1/runs", token: token)

            try expectError(response, .unauthorized, "unauthorized")
        }
    }

    @Test("An Authorization header that is not a bearer token answers 401 unauthorized")
    func nonBearerIsUnauthorized() async throws {
        try await withTokenApp { client in
            let response = try await client.send(.get, "/v1/runs", headers: [.authorization: "Basic Yzpj"])

            try expectError(response, .unauthorized, "unauthorized")
        }
    }

    @Test("The runner token on a client route answers 403 forbidden", arguments: clientRoutes)
    func runnerTokenOnClientRouteIsForbidden(method: HTTPRequest.Method, path: String) async throws {
        try await withTokenApp { client in
            let response = try await client.send(method, path, json: "{}", token: Tokens.runner)

            try expectError(response, .forbidden, "forbidden")
        }
    }

    @Test("The client token on a runner route answers 403 forbidden", arguments: runnerRoutes)
    func clientTokenOnRunnerRouteIsForbidden(method: HTTPRequest.Method, path: String) async throws {
        try await withTokenApp { client in
            let response = try await client.send(method, path, json: "{}", token: Tokens.client)

            try expectError(response, .forbidden, "forbidden")
        }
    }

    @Test("A forbidden create stores nothing")
    func forbiddenCreateStoresNothing() async throws {
        try await withTokenApp { client in
            _ = try await client.send(.post, "/v1/runs", json: oneTaskRun, token: Tokens.runner)
            let runs = try await client.getJSON("/v1/runs", token: Tokens.client)

            #expect(runs["items"]?.asArray?.isEmpty == true)
        }
    }

    @Test("/healthz and /readyz answer 200 without a token", arguments: ["/healthz", "/readyz"])
    func healthNeedsNoToken(path: String) async throws {
        try await withTokenApp { client in
            let response = try await client.send(.get, path)

            #expect(response.status == .ok)
        }
    }

    @Test("An unknown path answers 404 route_not_found with or without a token", arguments: [nil, Tokens.client, Tokens.runner, "nope"])
    func unknownPathIsRouteNotFoundWhateverTheToken(token: String?) async throws {
        try await withTokenApp { client in
            let response = try await client.send(.get, "/v1/nothing-here", token: token)

            try expectError(response, .notFound, "route_not_found")
        }
    }

    @Test("With the right tokens a client creates and a runner claims")
    func rightTokensWork() async throws {
        try await withTokenApp { client in
            let runID = try await client.createRun(oneTaskRun, token: Tokens.client)["id"]
            let claimed = try await client.claim(token: Tokens.runner)
            let taskID = claimed?["task"]?["id"]?.asString ?? ""
            let report = try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#), token: Tokens.runner)
            let snapshot = try await client.snapshot(runID?.asString ?? "", token: Tokens.client)

            #expect(claimed?["task"]?["run_id"] == runID)
            #expect(report["applied"]?.asBool == true)
            #expect(snapshot["status"]?.asString == "succeeded")
        }
    }

    @Test("The client token may release a lock")
    func clientTokenReleasesLocks() async throws {
        try await withTokenApp { client in
            _ = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]"), token: Tokens.client)
            _ = try await client.claim(token: Tokens.runner)
            let response = try await client.send(.delete, "/v1/locks/repo-a", token: Tokens.client)

            #expect(response.status == .noContent)
        }
    }
}

/// `ServerConfiguration.validate()`: the start-up refusals of SPEC §2.
@Suite("Server configuration")
struct ServerConfigurationTests {
    @Test("An open server (no tokens) may not listen on 0.0.0.0")
    func openServerRefusesWildcardHost() {
        var configuration = ServerConfiguration()
        configuration.host = "0.0.0.0"

        #expect(throws: ServerConfiguration.Problem.tokensRequired(host: "0.0.0.0")) { try configuration.validate() }
    }

    @Test("An open server on a loopback address is accepted", arguments: ["127.0.0.1", "localhost", "::1"])
    func openServerOnLoopbackIsAccepted(host: String) throws {
        var configuration = ServerConfiguration()
        configuration.host = host

        #expect(throws: Never.self) { try configuration.validate() }
    }

    @Test("With both tokens the server may listen on 0.0.0.0")
    func tokensAllowWildcardHost() {
        var configuration = ServerConfiguration()
        configuration.host = "0.0.0.0"
        configuration.clientToken = Tokens.client
        configuration.runnerToken = Tokens.runner

        #expect(throws: Never.self) { try configuration.validate() }
    }

    @Test("Only a client token is refused")
    func onlyClientTokenIsRefused() {
        var configuration = ServerConfiguration()
        configuration.clientToken = Tokens.client

        #expect(throws: ServerConfiguration.Problem.tokenPairIncomplete) { try configuration.validate() }
    }

    @Test("Only a runner token is refused")
    func onlyRunnerTokenIsRefused() {
        var configuration = ServerConfiguration()
        configuration.runnerToken = Tokens.runner

        #expect(throws: ServerConfiguration.Problem.tokenPairIncomplete) { try configuration.validate() }
    }

    @Test("buildApplication refuses an open server on 0.0.0.0")
    func buildApplicationRefusesUnsafeConfiguration() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let configuration = testConfiguration(database: directory.databasePath) { $0.host = "0.0.0.0" }

        await #expect(throws: ServerConfiguration.Problem.self) {
            _ = try await buildApplication(configuration, logger: quietLogger)
        }
    }

    @Test("The refusal message says how to fix it")
    func refusalMessageIsClear() {
        let message = ServerConfiguration.Problem.tokensRequired(host: "0.0.0.0").description

        #expect(message.contains("0.0.0.0"))
        #expect(message.contains("--client-token"))
        #expect(message.contains("--runner-token"))
    }
}
