import Hummingbird
import RunwardenCore

/// Per-runner tokens (SPEC §8): create (the secret shown once), list (no secrets), revoke.
struct RunnerTokenRoutes {
    let service: RunService
    let maxBody: Int

    var routes: [Route] {
        [
            Route(.post, "/v1/runner-tokens", role: .client, create),
            Route(.get, "/v1/runner-tokens", role: .client, list),
            Route(.delete, "/v1/runner-tokens/:id", role: .client, revoke),
        ]
    }

    @Sendable func create(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let definition: RunnerTokenDefinition
        switch RunnerTokenDefinition.parse(try await request.jsonBody(limit: maxBody), now: service.clock()) {
        case .success(let parsed): definition = parsed
        case .failure(let failure): throw failure
        }
        let (token, secret) = try await service.createRunnerToken(definition)
        return .json(RunnerTokenItem(token, secret: secret), status: .created)
    }

    @Sendable func list(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let page = try await service.runnerTokens(limit: try request.limit(default: 50, maximum: 500), after: request.query("cursor"))
        return .json(Page(items: page.items.map { RunnerTokenItem($0) }, nextCursor: page.nextCursor))
    }

    @Sendable func revoke(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        try await service.revokeRunnerToken(try context.parameters.require("id"))
        return Response(status: .noContent)
    }
}
