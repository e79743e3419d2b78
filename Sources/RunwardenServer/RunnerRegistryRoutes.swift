import Hummingbird
import RunwardenCore

/// The runner registry (SPEC §8): list, read, drain and resume — the client token's side.
struct RunnerRegistryRoutes {
    let service: RunService

    var routes: [Route] {
        [
            Route(.get, "/v1/runners", role: .client, list),
            Route(.get, "/v1/runners/:name", role: .client, read),
            Route(.post, "/v1/runners/:name/drain", role: .client, drain),
            Route(.post, "/v1/runners/:name/resume", role: .client, resume),
        ]
    }

    @Sendable func list(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let page = try await service.runners(limit: try request.limit(default: 50, maximum: 500), after: request.query("cursor"))
        return .json(Page(items: page.items, nextCursor: page.nextCursor))
    }

    @Sendable func read(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        .json(try await service.runner(try Self.name(context)))
    }

    @Sendable func drain(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        .json(try await service.setDraining(true, runner: try Self.name(context)), status: .accepted)
    }

    @Sendable func resume(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        .json(try await service.setDraining(false, runner: try Self.name(context)), status: .accepted)
    }

    /// A name no runner can have names no runner: `404 runner_not_found`.
    static func name(_ context: RunwardenRequestContext) throws -> String {
        let name = try context.parameters.require("name")
        guard RunnerName.isValid(name) else { throw RunwardenError.notFound(.runner, name) }
        return name
    }
}
