/// Renders the status object of SPEC §2 — field for field, nulls included — from a run.
public enum Snapshot {
    /// - Parameter lockHolders: workspace → id of the task holding its lock, for `blocked_by`.
    public static func run(_ run: Run, lockHolders: [String: String], includeTasks: Bool = true) -> JSONValue {
        let state = run.state
        var members: [JSONValue.Member] = [
            .init("id", .string(run.id)),
            .init("workflow", .string(run.spec.workflow)),
            .init("status", .string(state.status.rawValue)),
            .init("version", .int(Int64(state.version))),
            .init("created_at", .string(state.createdAt.iso8601)),
            .init("updated_at", .string(state.updatedAt.iso8601)),
            .init("started_at", JSONValue(state.startedAt)),
            .init("finished_at", JSONValue(state.finishedAt)),
            .init("duration_ms", durationMs(from: state.startedAt ?? state.createdAt, to: state.finishedAt)),
            .init("error", state.error?.json ?? .null),
            .init("progress", progress(run.tasks)),
        ]
        if includeTasks {
            let indexByName = run.taskIndexByName
            members.append(
                .init("tasks", .array(run.tasks.map { task($0, in: run, lockHolders: lockHolders, indexByName: indexByName) })))
        }
        members += [
            .init("output_ref", JSONValue(state.outputRef)),
            .init("metadata", run.spec.metadata ?? .null),
            .init("links", links(run.id)),
        ]
        return .object(members)
    }

    /// A task as it appears in the snapshot; with `includeRunID` as `GET /v1/tasks/{id}` answers it.
    public static func task(
        _ task: RunTask, in run: Run, lockHolders: [String: String], includeRunID: Bool = false,
        indexByName: [String: Int]? = nil
    ) -> JSONValue {
        let state = task.state
        var members: [JSONValue.Member] = [.init("id", .string(task.id))]
        if includeRunID { members.append(.init("run_id", .string(task.runID))) }
        members += [
            .init("name", .string(task.name)),
            .init("status", .string(state.status.rawValue)),
            .init("attempt", .int(Int64(state.attempt))),
            .init("runner", JSONValue(state.runner)),
            .init("workspace", JSONValue(task.spec.workspace)),
            .init("started_at", JSONValue(state.startedAt)),
            .init("finished_at", JSONValue(state.finishedAt)),
            .init("exit_code", JSONValue(state.exitCode)),
            .init("error", state.error?.json ?? .null),
            .init("heartbeat_at", JSONValue(state.heartbeatAt)),
            .init("blocked_by", blockedBy(task, in: run, lockHolders: lockHolders, indexByName: indexByName)),
            .init(
                "progress",
                state.progress.map { .object(["done": .int(Int64($0.done)), "total": .int(Int64($0.total))]) } ?? .null),
            .init("output_ref", JSONValue(state.outputRef)),
        ]
        return .object(members)
    }

    /// What a `pending` or `queued` task waits for: its unmet needs, or a workspace held by another task.
    public static func blockedBy(
        _ task: RunTask, in run: Run, lockHolders: [String: String], indexByName: [String: Int]? = nil
    ) -> JSONValue {
        switch task.status {
        case .pending:
            let indexByName = indexByName ?? run.taskIndexByName
            let unmet = task.spec.needs.filter { name in
                indexByName[name].map { !RunChange.meets(run.tasks[$0]) } ?? true
            }
            return .object(["needs": JSONValue(strings: unmet)])
        case .queued:
            guard let workspace = task.spec.workspace, let holder = lockHolders[workspace], holder != task.id else {
                return .null
            }
            return .object(["workspace": .string(workspace), "held_by": .string(holder)])
        default:
            return .null
        }
    }

    /// Task counts per status, which add up to `total`; `percent` is terminal tasks × 100 / total.
    public static func progress(_ tasks: [RunTask]) -> JSONValue {
        var counts = [TaskStatus: Int]()
        for task in tasks { counts[task.status, default: 0] += 1 }
        let terminal = tasks.filter { $0.status.isTerminal }.count
        var members: [JSONValue.Member] = [.init("total", .int(Int64(tasks.count)))]
        for status in TaskStatus.allCases { members.append(.init(status.rawValue, .int(Int64(counts[status] ?? 0)))) }
        members.append(.init("percent", .int(tasks.isEmpty ? 0 : Int64(terminal * 100 / tasks.count))))
        return .object(members)
    }

    /// The task as a runner receives it from a claim.
    public static func claimed(_ task: RunTask) -> JSONValue {
        .object([
            "id": .string(task.id), "run_id": .string(task.runID), "name": .string(task.name),
            "command": JSONValue(strings: task.spec.command.argv), "env": JSONValue(stringMap: task.spec.env),
            "workspace": JSONValue(task.spec.workspace), "timeout_s": JSONValue(task.spec.timeoutSeconds),
            "attempt": .int(Int64(task.state.attempt)), "labels": JSONValue(strings: task.spec.labels),
        ])
    }

    public static func links(_ runID: String) -> JSONValue {
        let base = "/v1/runs/" + runID
        return .object([
            "self": .string(base), "events": .string(base + "/events"), "stream": .string(base + "/stream"),
            "cancel": .string(base + "/cancel"),
        ])
    }

    private static func durationMs(from start: Timestamp, to end: Timestamp?) -> JSONValue {
        guard let end else { return .null }
        return .int(max(0, end.milliseconds - start.milliseconds))
    }
}
