import Foundation
import Hummingbird
import RunwardenCore

/// The runner protocol (SPEC §2): claim, heartbeat, status report — all need the runner token.
struct RunnerRoutes {
    let service: RunService
    let maxBody: Int

    var routes: [Route] {
        [
            Route(.post, "/v1/runners/:name/claim", role: .runner, claim),
            Route(.post, "/v1/runners/:name/heartbeat", role: .runner, heartbeat),
            Route(.post, "/v1/tasks/:id/status", role: .runner, report),
        ]
    }

    @Sendable func claim(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let runner = try Self.runnerName(context)
        var labels: Set<String> = []
        var claimID: String?
        if let body = try await request.optionalJSONBody(limit: maxBody) {
            var reader = FieldReader()
            if reader.object(body, at: "", allowed: ["labels", "claim_id"]) != nil {
                labels = Set(reader.stringList(body, "labels", at: "") ?? [])
                claimID = reader.string(body, "claim_id", at: "")
                if let claimID, !Self.isValidClaimID(claimID) {
                    reader.fail("claim_id", "must be 1 to 100 letters, digits, '.', '_' or '-'")
                }
            }
            if !reader.errors.isEmpty { throw ValidationFailure(reader.errors) }
        }
        let wait = try request.waitDuration()
        let claimed = try await DisconnectWatch.longPoll(on: context.channel, wait: wait) { [service, labels, claimID] in
            try await service.claim(runner: runner, labels: labels, claimID: claimID, wait: wait)
        }
        guard let task = claimed else {
            return Response(status: .noContent)
        }
        return .json(ClaimAnswer(task: Snapshot.claimed(task), leaseS: service.leaseSeconds))
    }

    @Sendable func heartbeat(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let runner = try Self.runnerName(context)
        let body = try await request.jsonBody(limit: maxBody)
        var reader = FieldReader()
        var taskIDs: [String] = []
        if reader.object(body, at: "", allowed: ["tasks"]) != nil {
            taskIDs = reader.stringList(body, "tasks", at: "") ?? []
            if body["tasks"] == nil || body["tasks"] == .null { reader.fail("tasks", "is required") }
            if taskIDs.count > 10_000 { reader.fail("tasks", "must list at most 10000 tasks") }
        }
        if !reader.errors.isEmpty { throw ValidationFailure(reader.errors) }
        let cancel = try await service.heartbeat(runner: runner, taskIDs: taskIDs)
        return .json(HeartbeatAnswer(cancel: cancel, leaseS: service.leaseSeconds))
    }

    @Sendable func report(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let taskID = try context.parameters.require("id")
        let body = try await request.jsonBody(limit: maxBody)
        let report: StatusReport
        switch StatusReport.parse(body) {
        case .success(let parsed): report = parsed
        case .failure(let failure): throw failure
        }
        let runner = request.headers[.runnerName]
        let (applied, record, task) = try await service.report(taskID: taskID, report, runner: runner)
        return .json(
            ReportAnswer(
                applied: applied, task: Snapshot.task(task, in: record.run, lockHolders: record.lockHolders, includeRunID: true)))
    }

    /// Runner names are short and plain: letters, digits, `.`, `_`, `-`.
    static func runnerName(_ context: RunwardenRequestContext) throws -> String {
        let name = try context.parameters.require("name")
        let allowed = name.unicodeScalars.allSatisfy(CharacterSet.runnerName.contains)
        guard (1...128).contains(name.count), allowed else {
            throw RunwardenError(
                .validationFailed, "runner names use letters, digits, '.', '_' and '-' (at most 128)",
                details: [FieldError("name", "must be 1 to 128 letters, digits, '.', '_' or '-'")])
        }
        return name
    }

    /// Claim ids are the runner's own, echoed into the database and logs: kept short and plain.
    static func isValidClaimID(_ id: String) -> Bool {
        (1...100).contains(id.count) && id.unicodeScalars.allSatisfy(CharacterSet.runnerName.contains)
    }
}

extension CharacterSet {
    static let runnerName = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
}
