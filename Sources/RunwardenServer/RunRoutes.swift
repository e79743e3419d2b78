import Hummingbird
import RunwardenCore
import RunwardenStore

/// `/v1/runs`: create, list, snapshot (with long-poll), timeline, a page of tasks, cancel and re-run.
struct RunRoutes {
    let service: RunService
    let maxBody: Int
    /// Where a `callback_url` may point (`--webhook-deny`, `--webhook-allow`).
    let egress: EgressPolicy
    /// The most tasks a run may hold (`--max-tasks`).
    let maxTasks: Int
    /// Rendered snapshots of unchanged runs, for the reads (the hottest route).
    let snapshots = SnapshotCache()

    var routes: [Route] {
        [
            Route(.post, "/v1/runs", role: .client, create),
            Route(.post, "/v1/runs/cancel", role: .client, cancelMany),
            Route(.get, "/v1/runs", role: .client, list),
            Route(.get, "/v1/runs/:id", role: .client, snapshot),
            Route(.get, "/v1/runs/:id/events", role: .client, events),
            Route(.get, "/v1/runs/:id/tasks", role: .client, tasks),
            Route(.post, "/v1/runs/:id/cancel", role: .client, cancel),
            Route(.post, "/v1/runs/:id/rerun", role: .client, rerun),
        ]
    }

    @Sendable func create(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let body = try await request.jsonBody(limit: maxBody)
        let definition: RunDefinition
        switch RunDefinition.parse(body, egress: egress, maxTasks: maxTasks) {
        case .success(let parsed): definition = parsed
        case .failure(let failure): throw failure
        }
        let idempotency = try Self.idempotencyKey(request, context, canonicalBody: body.canonical)
        // A caller's trace context (SPEC §11): two `traceparent` headers join into one malformed
        // value and are ignored, as W3C asks.
        let traceparent = request.headers[.traceparent]
        let tracestate = request.headers[.tracestate]
        switch try await service.create(definition, idempotency: idempotency, traceparent: traceparent, tracestate: tracestate) {
        case .created(let record):
            var snapshot = Snapshot.run(record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders)
            if definition.run.callbackURL != nil, definition.run.callbackSecret == nil {
                snapshot.callbackSecret = record.run.spec.callbackSecret  // generated: shown this once
            }
            return .json(snapshot, status: .accepted, headers: [.location: "/v1/runs/" + record.run.id])
        case .replayed(let record):
            return Self.replayed(record)
        }
    }

    /// `POST /v1/runs/{id}/rerun {"tasks": "failed" | [names]}` (SPEC §10): a new run, answered
    /// like a create. No body means `"failed"`.
    @Sendable func rerun(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let body = try await request.optionalJSONBody(limit: maxBody) ?? .object([])
        let selection: RerunSelection
        switch RerunSelection.parse(body) {
        case .success(let parsed): selection = parsed
        case .failure(let failure): throw failure
        }
        // The key covers the run re-run too: the same key and body for another run is a reuse.
        let keyed = JSONValue.object([.init("rerun", .string(id)), .init("body", body)])
        let idempotency = try Self.idempotencyKey(request, context, canonicalBody: keyed.canonical)
        switch try await service.rerun(id, selection, idempotency: idempotency) {
        case .created(let record):
            return .json(
                Snapshot.run(record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders), status: .accepted,
                headers: [.location: "/v1/runs/" + record.run.id])
        case .replayed(let record):
            return Self.replayed(record)
        }
    }

    /// The `Idempotency-Key` header, scoped to the token, with the digest of the body it came with.
    private static func idempotencyKey(
        _ request: Request, _ context: RunwardenRequestContext, canonicalBody: JSONValue
    ) throws -> IdempotencyKey? {
        guard let key = request.headers[.idempotencyKey] else { return nil }
        guard !key.isEmpty, key.count <= 255 else {
            throw RunwardenError(
                .validationFailed, "the Idempotency-Key header must be 1 to 255 characters",
                details: [FieldError("Idempotency-Key", "must be 1 to 255 characters")])
        }
        let canonical = String(decoding: canonicalBody.encoded(), as: UTF8.self)
        return IdempotencyKey(token: context.token, key: key, canonicalBody: canonical)
    }

    /// The answer to a request replayed under its `Idempotency-Key`: the run it created.
    private static func replayed(_ record: RunRecord) -> Response {
        .json(
            Snapshot.run(record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders), status: .ok,
            headers: [.location: "/v1/runs/" + record.run.id, .idempotentReplayed: "true"])
    }

    @Sendable func list(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        var query = RunQuery(limit: try request.limit(default: 50, maximum: 500))
        if let status = request.query("status") {
            guard let parsed = RunStatus(rawValue: status) else { throw RunwardenError.invalidQuery("status", RunFilter.statusRule(status)) }
            query.status = parsed
        }
        if let workflow = request.query("workflow") { query.workflow = workflow }
        for (name, value) in request.uri.queryParameters where name.hasPrefix("metadata.") {
            let key = String(name.dropFirst("metadata.".count))
            guard !key.isEmpty else { throw RunwardenError.invalidQuery(String(name), "must name a metadata key: metadata.KEY=VALUE") }
            query.metadata[key] = String(value)
        }
        if query.metadata.count > RunFilter.maxMetadataFilters {
            throw RunwardenError.invalidQuery("metadata", "may name at most \(RunFilter.maxMetadataFilters) keys")
        }
        query.createdAfter = try Self.timestampQuery(request, "created_after")
        query.createdBefore = try Self.timestampQuery(request, "created_before")
        if let cursor = request.query("cursor") {
            guard Identifier.isWellFormed(cursor, .run) else {
                throw RunwardenError.invalidQuery("cursor", "is not a cursor this server handed out")
            }
            query.before = cursor
        }
        let page = try await service.runs(query)
        var items: [RunSnapshot] = []
        for run in page.runs {
            let holders = try await service.concurrencyHolders(of: run)
            items.append(Snapshot.run(run, lockHolders: [:], concurrencyHolders: holders, includeTasks: false))
        }
        return .json(RunList(items: items, nextCursor: page.nextCursor))
    }

    private static func timestampQuery(_ request: Request, _ name: String) throws -> Timestamp? {
        guard let text = request.query(name) else { return nil }
        guard let timestamp = Timestamp(iso8601: text) else { throw RunwardenError.invalidQuery(name, RunFilter.timestampRule(text)) }
        return timestamp
    }

    /// `POST /v1/runs/cancel` (SPEC §10): cancels every unfinished run the filters name;
    /// `202 {"canceled": N}`. A body without a filter is `422`.
    @Sendable func cancelMany(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let filter: RunFilter
        switch RunFilter.parseBulkCancel(try await request.jsonBody(limit: maxBody)) {
        case .success(let parsed): filter = parsed
        case .failure(let failure): throw failure
        }
        return .json(BulkCancelAnswer(canceled: try await service.cancelRuns(filter)), status: .accepted)
    }

    @Sendable func snapshot(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let version = try request.integerQuery("version", minimum: 0)
        let wait = try request.waitDuration()
        let includeTasks = try request.booleanQuery("tasks", default: true)
        // A plain read of a run the store vouches is unchanged answers without reading it. The
        // stamp is taken before the read below, so what that read renders is kept under it.
        let stamp = version == nil && wait <= .zero && includeTasks ? service.snapshotStamp(id) : nil
        if let stamp, let bytes = snapshots.bytes(runID: id, at: stamp) { return .json(bytes: bytes) }
        let record = try await DisconnectWatch.longPoll(on: context.channel, wait: wait) { [service] in
            try await service.run(id, afterVersion: version, wait: wait, withTasks: includeTasks)
        }
        // Without tasks the answer is small whatever the run's width, and so is its read.
        guard includeTasks else {
            return .json(Snapshot.run(record.run, lockHolders: [:], concurrencyHolders: record.concurrencyHolders, includeTasks: false))
        }
        return .json(bytes: snapshots.bytes(of: record, stamp: stamp))
    }

    @Sendable func events(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        return try await EventRoutes.page(request, context, service: service, runID: id)
    }

    /// A page of the run's tasks in run order, optionally of one status (SPEC §7). The cursor is
    /// the last task id of the page before. (Reads the whole run, as a snapshot does.)
    @Sendable func tasks(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let limit = try request.limit(default: 50, maximum: 500)
        var status: TaskStatus?
        if let text = request.query("status") {
            guard let parsed = TaskStatus(rawValue: text) else {
                let allowed = TaskStatus.allCases.map(\.rawValue).joined(separator: ", ")
                throw RunwardenError.invalidQuery("status", "must be one of \(allowed), not \"\(text)\"")
            }
            status = parsed
        }
        let record = try await service.run(id)
        let run = record.run
        var start = run.tasks.startIndex
        if let cursor = request.query("cursor") {
            guard let index = run.taskIndex(id: cursor) else {
                throw RunwardenError.invalidQuery("cursor", "is not a task of this run")
            }
            start = index + 1
        }
        let page = Array(run.tasks[start...].lazy.filter { status == nil || $0.status == status }.prefix(limit + 1))
        let indexByName = run.taskIndexByName
        let items = page.prefix(limit).map {
            Snapshot.task($0, in: run, lockHolders: record.lockHolders, indexByName: indexByName)
        }
        return .json(Page(items: items, nextCursor: page.count > limit ? items.last?.id : nil))
    }

    @Sendable func cancel(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let record = try await service.cancel(id)
        return .json(Snapshot.run(record.run, lockHolders: record.lockHolders, concurrencyHolders: record.concurrencyHolders), status: .accepted)
    }
}
