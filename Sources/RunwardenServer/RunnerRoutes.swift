import Foundation
import Hummingbird
import RunwardenCore

/// The runner protocol (SPEC §2): claim, heartbeat, status report and goodbye — all need the
/// runner token. Claims and heartbeats are the runner's contact with the registry (SPEC §8).
struct RunnerRoutes {
    let service: RunService
    let maxBody: Int

    var routes: [Route] {
        [
            Route(.post, "/v1/runners/:name/claim", role: .runner, claim),
            Route(.post, "/v1/runners/:name/heartbeat", role: .runner, heartbeat),
            Route(.post, "/v1/runners/:name/goodbye", role: .runner, goodbye),
            Route(.post, "/v1/tasks/:id/status", role: .runner, report),
        ]
    }

    @Sendable func claim(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        var contact = RunnerContact(name: try Self.runnerName(context))
        var labels: Set<String> = []
        var claimID: String?
        if let body = try await request.optionalJSONBody(limit: maxBody) {
            var reader = FieldReader()
            if reader.object(body, at: "", allowed: RunnerContact.fields.union(["labels", "claim_id"])) != nil {
                labels = Set(reader.stringList(body, "labels", at: "") ?? [])
                claimID = reader.string(body, "claim_id", at: "")
                if let claimID, !Self.isValidClaimID(claimID) {
                    reader.fail("claim_id", "must be 1 to 100 letters, digits, '.', '_' or '-'")
                }
                contact.read(body, with: &reader)
            }
            if !reader.errors.isEmpty { throw ValidationFailure(reader.errors) }
        }
        // A per-runner token takes only tasks within its labels (SPEC §8).
        labels = context.runnerScope?.labels(offered: labels) ?? labels
        contact.labels = labels.sorted()
        let wait = try request.waitDuration()
        let recheck = context.runnerScope == nil ? nil : context.token.map(recheckRunnerToken)
        let outcome = try await DisconnectWatch.longPoll(on: context.channel, wait: wait) { [service, contact, labels, claimID] in
            try await service.claim(contact, labels: labels, claimID: claimID, wait: wait, recheck: recheck)
        }
        switch outcome {
        case .task(let task, let trace):
            let attempt = trace?.attemptContext(taskID: task.id, attempt: task.state.attempt)
            return .json(ClaimAnswer(task: Snapshot.claimed(task, trace: attempt), leaseS: service.leaseSeconds))
        case .draining: return Response(status: .noContent, headers: [.runwardenDrain: "true"])
        case .nothing: return Response(status: .noContent)
        }
    }

    @Sendable func heartbeat(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        var contact = RunnerContact(name: try Self.runnerName(context))
        let body = try await request.jsonBody(limit: maxBody)
        var reader = FieldReader()
        var taskIDs: [String] = []
        if reader.object(body, at: "", allowed: RunnerContact.fields.union(["tasks"])) != nil {
            taskIDs = reader.stringList(body, "tasks", at: "") ?? []
            if body["tasks"] == nil || body["tasks"] == .null { reader.fail("tasks", "is required") }
            if taskIDs.count > 10_000 { reader.fail("tasks", "must list at most 10000 tasks") }
            contact.read(body, with: &reader)
        }
        if !reader.errors.isEmpty { throw ValidationFailure(reader.errors) }
        let cancel = try await service.heartbeat(contact, taskIDs: taskIDs)
        return .json(HeartbeatAnswer(cancel: cancel, leaseS: service.leaseSeconds))
    }

    /// Looks a per-runner token up again while its claim waits: revoked or expired, the claim ends `401`.
    private func recheckRunnerToken(_ secret: String) -> @Sendable () async throws -> Void {
        { [service] in
            guard let token = try await service.runnerToken(secret: secret), !token.isExpired(at: service.clock()) else {
                throw RunwardenError(.unauthorized, "this runner token was revoked or has expired")
            }
        }
    }

    /// A runner stopping gracefully says so: it shows `offline` at once, and no `runner.lost` follows.
    @Sendable func goodbye(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        .json(try await service.goodbye(runner: try Self.runnerName(context)), status: .accepted)
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
        if let runner { try Self.checkScope(context, runner) }
        let (applied, record, task) = try await service.report(taskID: taskID, report, runner: runner, scope: context.runnerScope)
        return .json(
            ReportAnswer(
                applied: applied, task: Snapshot.task(task, in: record.run, lockHolders: record.lockHolders, includeRunID: true)))
    }

    /// Runner names are short and plain (SPEC §8: `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`), and a
    /// per-runner token may act only as the names its patterns allow.
    static func runnerName(_ context: RunwardenRequestContext) throws -> String {
        let name = try context.parameters.require("name")
        guard RunnerName.isValid(name) else {
            throw RunwardenError(
                .validationFailed, "runner names use letters, digits, '.', '_' and '-' (at most 128)",
                details: [FieldError("name", RunnerName.rule)])
        }
        try checkScope(context, name)
        return name
    }

    /// `403 forbidden` for a name outside the per-runner token's `runner_names`.
    static func checkScope(_ context: RunwardenRequestContext, _ name: String) throws {
        if let scope = context.runnerScope, !scope.allows(runner: name) {
            throw RunwardenError(.forbidden, "this runner token may not act as runner \"\(name)\"")
        }
    }

    /// Claim ids are the runner's own, echoed into the database and logs: kept short and plain.
    static func isValidClaimID(_ id: String) -> Bool {
        (1...100).contains(id.count) && id.unicodeScalars.allSatisfy(CharacterSet.claimID.contains)
    }
}

extension CharacterSet {
    static let claimID = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
}
