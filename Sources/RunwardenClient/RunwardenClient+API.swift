import Foundation
import NIOHTTP1
import RunwardenCore

/// One method per route the CLI and the runner use.
extension RunwardenClient {
    public func createRun(_ body: JSONValue, idempotencyKey: String? = nil) async throws -> RunSnapshot {
        let headers = idempotencyKey.map { [("Idempotency-Key", $0)] } ?? []
        return try decode(RunSnapshot.self, try await send(.POST, "/v1/runs", body: body, headers: headers))
    }

    /// The run's snapshot; with `afterVersion` and `wait`, long-polls until the version moves.
    /// With `tasks: false`, the snapshot without its tasks: small whatever the run's width.
    public func run(_ id: String, afterVersion: Int? = nil, wait: Int? = nil, tasks: Bool = true) async throws -> RunSnapshot {
        var query: [(String, String)] = tasks ? [] : [("tasks", "false")]
        if let afterVersion { query.append(("version", String(afterVersion))) }
        if let wait { query.append(("wait", String(wait))) }
        let timeout = Duration.seconds((wait ?? 0) + 30)
        return try decode(
            RunSnapshot.self, try await send(.GET, "/v1/runs/" + Self.pathSegment(id), query: query, timeout: timeout))
    }

    /// A page of runs, newest first (SPEC §10 filters: `metadata` pairs must all match exactly;
    /// `createdAfter`/`createdBefore` are ISO 8601 text, checked by the server).
    public func runs(
        status: String? = nil, workflow: String? = nil, limit: Int? = nil, cursor: String? = nil,
        metadata: [(key: String, value: String)] = [], createdAfter: String? = nil, createdBefore: String? = nil
    ) async throws -> RunList {
        var query: [(String, String)] = []
        if let status { query.append(("status", status)) }
        if let workflow { query.append(("workflow", workflow)) }
        var nameAllowed = CharacterSet.urlQueryAllowed
        nameAllowed.remove(charactersIn: "&=+")
        for (key, value) in metadata {
            // The key is part of the parameter's name, which `encode` leaves as it is.
            query.append(("metadata." + (key.addingPercentEncoding(withAllowedCharacters: nameAllowed) ?? key), value))
        }
        if let createdAfter { query.append(("created_after", createdAfter)) }
        if let createdBefore { query.append(("created_before", createdBefore)) }
        if let limit { query.append(("limit", String(limit))) }
        if let cursor { query.append(("cursor", cursor)) }
        return try decode(RunList.self, try await send(.GET, "/v1/runs", query: query))
    }

    public func events(runID: String, after: Int64 = 0, limit: Int? = nil, wait: Int? = nil) async throws -> EventPage {
        var query: [(String, String)] = [("after", String(after))]
        if let limit { query.append(("limit", String(limit))) }
        if let wait { query.append(("wait", String(wait))) }
        let timeout = Duration.seconds((wait ?? 0) + 30)
        return try decode(
            EventPage.self,
            try await send(.GET, "/v1/runs/" + Self.pathSegment(runID) + "/events", query: query, timeout: timeout))
    }

    public func cancel(_ id: String) async throws -> RunSnapshot {
        try decode(RunSnapshot.self, try await send(.POST, "/v1/runs/" + Self.pathSegment(id) + "/cancel"))
    }

    /// Re-runs a finished run (SPEC §10): `tasks` nil re-runs what did not succeed.
    public func rerun(_ id: String, tasks: [String]? = nil, idempotencyKey: String? = nil) async throws -> RunSnapshot {
        let selection: JSONValue = tasks.map { .array($0.map(JSONValue.string)) } ?? .string("failed")
        let headers = idempotencyKey.map { [("Idempotency-Key", $0)] } ?? []
        return try decode(
            RunSnapshot.self,
            try await send(
                .POST, "/v1/runs/" + Self.pathSegment(id) + "/rerun", body: .object([.init("tasks", selection)]), headers: headers))
    }

    /// Approves (or, with `approved: false`, rejects) an approval task (SPEC §10).
    public func decideApproval(_ taskID: String, approved: Bool, comment: String? = nil) async throws -> TaskSnapshot {
        let body: JSONValue = .object(comment.map { [.init("comment", .string($0))] } ?? [])
        let path = "/v1/tasks/" + Self.pathSegment(taskID) + (approved ? "/approve" : "/reject")
        return try decode(TaskSnapshot.self, try await send(.POST, path, body: body))
    }

    // MARK: - Runner protocol

    /// What a runner tells the registry about itself with each claim and heartbeat (SPEC §8).
    public struct RunnerFacts: Sendable, Equatable {
        public var version: String
        public var hostname: String
        public var concurrency: Int
        public init(version: String, hostname: String, concurrency: Int) {
            self.version = version
            self.hostname = hostname
            self.concurrency = concurrency
        }

        var members: [JSONValue.Member] {
            [.init("version", .string(version)), .init("hostname", .string(hostname)), .init("concurrency", .int(Int64(concurrency)))]
        }
    }

    /// What a claim got: a task, nothing within `wait`, or nothing because the runner is draining.
    public enum ClaimResult: Sendable, Equatable {
        case task(ClaimAnswer)
        case nothing
        case draining
    }

    /// Asks for a task, waiting up to `wait` seconds. Repeat a claim whose answer never came with
    /// the same `claimID`: the server hands back the task it gave the lost answer, instead of
    /// leaving it to time out.
    public func claim(
        runner: String, labels: [String], wait: Int, claimID: String? = nil, facts: RunnerFacts? = nil
    ) async throws -> ClaimResult {
        var body = [JSONValue.Member("labels", JSONValue(strings: labels))]
        if let claimID { body.append(JSONValue.Member("claim_id", .string(claimID))) }
        body += facts?.members ?? []
        let answer = try await send(
            .POST, "/v1/runners/" + Self.pathSegment(runner) + "/claim", query: [("wait", String(wait))],
            body: .object(body), timeout: .seconds(wait + 30))
        if answer.status == 204 { return answer.headers.first(name: RunnerItem.drainHeader) == "true" ? .draining : .nothing }
        return .task(try decode(ClaimAnswer.self, answer))
    }

    public func heartbeat(
        runner: String, taskIDs: [String], facts: RunnerFacts? = nil, timeout: Duration = .seconds(30)
    ) async throws -> HeartbeatAnswer {
        try decode(
            HeartbeatAnswer.self,
            try await send(
                .POST, "/v1/runners/" + Self.pathSegment(runner) + "/heartbeat",
                body: .object([JSONValue.Member("tasks", JSONValue(strings: taskIDs))] + (facts?.members ?? [])), timeout: timeout))
    }

    /// The runner is stopping gracefully: it shows `offline` at once instead of `lost` a lease later.
    public func goodbye(runner: String, timeout: Duration = .seconds(5)) async throws -> RunnerItem {
        try decode(RunnerItem.self, try await send(.POST, "/v1/runners/" + Self.pathSegment(runner) + "/goodbye", timeout: timeout))
    }

    // MARK: - Runner registry

    public func runners(limit: Int? = nil, cursor: String? = nil) async throws -> Page<RunnerItem> {
        var query: [(String, String)] = []
        if let limit { query.append(("limit", String(limit))) }
        if let cursor { query.append(("cursor", cursor)) }
        return try decode(Page<RunnerItem>.self, try await send(.GET, "/v1/runners", query: query))
    }

    public func runner(_ name: String) async throws -> RunnerItem {
        try decode(RunnerItem.self, try await send(.GET, "/v1/runners/" + Self.pathSegment(name)))
    }

    /// Drains (`true`) or resumes (`false`) a runner.
    public func setDraining(_ draining: Bool, runner name: String) async throws -> RunnerItem {
        try decode(RunnerItem.self, try await send(.POST, "/v1/runners/" + Self.pathSegment(name) + (draining ? "/drain" : "/resume")))
    }

    public func report(taskID: String, body: JSONValue, runner: String) async throws -> ReportAnswer {
        try decode(
            ReportAnswer.self,
            try await send(
                .POST, "/v1/tasks/" + Self.pathSegment(taskID) + "/status", body: body, headers: [("X-Runner-Name", runner)]))
    }
}
