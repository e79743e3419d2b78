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
        let items = try await service.locks().map { lock -> JSONValue in
            .object([
                "workspace": .string(lock.workspace), "task_id": .string(lock.taskID), "run_id": .string(lock.runID),
                "runner": .string(lock.runner), "acquired_at": .string(lock.acquiredAt.iso8601),
            ])
        }
        return .json(.object(["items": .array(items), "next_cursor": .null]))
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
            Route(.get, "/healthz", role: nil) { _, _ in .json(.object(["status": .string("ok")])) },
            Route(.get, "/readyz", role: nil) { _, _ in
                do {
                    try await service.store.checkHealth()
                    return .json(.object(["status": .string("ready")]))
                } catch {
                    throw APIError(.serviceUnavailable, "not_ready", "the database cannot be reached")
                }
            },
        ]
    }
}
