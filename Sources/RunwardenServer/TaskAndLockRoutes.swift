import Foundation
import Hummingbird
import RunwardenCore

/// `GET /v1/tasks/{id}` and the workspace locks.
struct TaskAndLockRoutes {
    let service: RunService

    var routes: [Route] {
        [
            Route(.get, "/v1/tasks/:id", role: .client, task),
            Route(.get, "/v1/locks", role: .client, locks),
            Route(.delete, "/v1/locks/:workspace", role: .client, release),
        ]
    }

    @Sendable func task(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let (record, task) = try await service.task(try context.parameters.require("id"))
        return .json(Snapshot.task(task, in: record.run, lockHolders: record.lockHolders, includeRunID: true))
    }

    @Sendable func locks(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let items = try await service.locks().map { lock in
            LockItem(
                workspace: lock.workspace, taskID: lock.taskID, runID: lock.runID, runner: lock.runner,
                acquiredAt: lock.acquiredAt.iso8601)
        }
        return .json(Page(items: items, nextCursor: nil))
    }

    @Sendable func release(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        // Path parameters arrive percent-encoded: `repo%20a` names the workspace "repo a".
        let raw = try context.parameters.require("workspace")
        try await service.releaseLock(workspace: raw.removingPercentEncoding ?? raw)
        return Response(status: .noContent)
    }
}

/// `/healthz` (the process answers) and `/readyz` (and its database too); no token needed.
struct HealthRoutes {
    let service: RunService

    var routes: [Route] {
        [
            Route(.get, "/healthz", role: nil) { _, _ in .json(Health(status: "ok")) },
            Route(.get, "/readyz", role: nil) { _, _ in
                do {
                    try await service.checkHealth()
                    return .json(Health(status: "ready"))
                } catch {
                    throw RunwardenError(.notReady, "the database cannot be reached")
                }
            },
        ]
    }
}
