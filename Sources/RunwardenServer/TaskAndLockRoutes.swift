import Foundation
import Hummingbird
import RunwardenCore

/// `GET /v1/tasks/{id}`, approve and reject of approval tasks, and the workspace locks.
struct TaskAndLockRoutes {
    let service: RunService
    let maxBody: Int

    var routes: [Route] {
        [
            Route(.get, "/v1/tasks/:id", role: .client, task),
            Route(.post, "/v1/tasks/:id/approve", role: .client, perRunnerTokens: true, approve),
            Route(.post, "/v1/tasks/:id/reject", role: .client, perRunnerTokens: true, reject),
            Route(.get, "/v1/locks", role: .client, locks),
            Route(.delete, "/v1/locks/:workspace", role: .client, release),
        ]
    }

    @Sendable func task(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let (record, task) = try await service.task(try context.parameters.require("id"))
        return .json(Snapshot.task(task, in: record.run, lockHolders: record.lockHolders, includeRunID: true))
    }

    @Sendable func approve(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        try await decide(request, context, approved: true)
    }

    @Sendable func reject(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        try await decide(request, context, approved: false)
    }

    /// `POST /v1/tasks/{id}/approve|reject {"comment"?}` (SPEC §10): `200` with the task as
    /// `GET /v1/tasks/{id}` shows it. Who decided (SPEC §10): a per-runner token's id, else the
    /// kind of token the request presented (`client`, or `open` without tokens).
    private func decide(_ request: Request, _ context: RunwardenRequestContext, approved: Bool) async throws -> Response {
        let id = try context.parameters.require("id")
        let comment: String?
        switch ApprovalDecision.parseComment(try await request.optionalJSONBody(limit: maxBody)) {
        case .success(let parsed): comment = parsed
        case .failure(let failure): throw failure
        }
        let by = context.runnerTokenID ?? (context.role == .open ? "open" : "client")
        let (record, task) = try await service.decideApproval(taskID: id, approved: approved, by: by, comment: comment)
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
