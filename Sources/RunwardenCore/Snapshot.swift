/// Renders a run into the wire types of SPEC §2 (`RunSnapshot`, `TaskSnapshot`, `ClaimedTask`).
public enum Snapshot {
    /// - Parameters:
    ///   - lockHolders: workspace → id of the task holding its lock, for tasks' `blocked_by`.
    ///   - concurrencyHolders: the runs holding the slots of the run's concurrency key, for its
    ///     own `blocked_by` while it waits (SPEC §10).
    public static func run(
        _ run: Run, lockHolders: [String: String], concurrencyHolders: [String] = [], includeTasks: Bool = true
    ) -> RunSnapshot {
        let state = run.state
        var tasks: [TaskSnapshot]?
        if includeTasks {
            let indexByName = run.taskIndexByName
            tasks = run.tasks.map { task($0, in: run, lockHolders: lockHolders, indexByName: indexByName) }
        }
        return RunSnapshot(
            id: run.id, workflow: run.spec.workflow, status: state.status, version: state.version, runAttempt: run.runAttempt,
            rerunOf: run.spec.rerunOf, reruns: state.reruns ?? [],
            createdAt: state.createdAt.iso8601, updatedAt: state.updatedAt.iso8601, startedAt: state.startedAt?.iso8601,
            finishedAt: state.finishedAt?.iso8601,
            durationMs: state.finishedAt.map { max(0, $0.milliseconds - (state.startedAt ?? state.createdAt).milliseconds) },
            error: state.error, priority: run.spec.priority ?? 0, concurrency: run.spec.concurrency.map(ConcurrencyWire.init),
            blockedBy: run.concurrencyBlock(heldBy: concurrencyHolders), progress: progress(of: run), tasks: tasks, outputRef: state.outputRef,
            metadata: run.spec.metadata, links: RunLinks(runID: run.id), callbackSecret: nil,
            compacted: state.compactedAt == nil ? nil : true)
    }

    /// A task as it appears in the snapshot; with `includeRunID` as `GET /v1/tasks/{id}` answers it.
    public static func task(
        _ task: RunTask, in run: Run, lockHolders: [String: String], includeRunID: Bool = false,
        indexByName: [String: Int]? = nil
    ) -> TaskSnapshot {
        let state = task.state
        return TaskSnapshot(
            id: task.id, runID: includeRunID ? task.runID : nil, name: task.name, status: state.status,
            attempt: state.attempt, priority: task.spec.claimPriority, runner: state.runner, workspace: task.spec.workspace,
            needs: task.spec.needs,
            startedAt: state.startedAt?.iso8601, finishedAt: state.finishedAt?.iso8601, exitCode: state.exitCode,
            error: state.error, heartbeatAt: state.heartbeatAt?.iso8601,
            blockedBy: blockedBy(task, in: run, lockHolders: lockHolders, indexByName: indexByName),
            progress: state.progress, outputRef: state.outputRef, reusedFrom: state.reusedFrom,
            approval: task.spec.approval == nil ? nil : ApprovalWire(state.approval))
    }

    /// What a `pending` or `queued` task waits for: its unmet needs, or a workspace held by another task.
    public static func blockedBy(
        _ task: RunTask, in run: Run, lockHolders: [String: String], indexByName: [String: Int]? = nil
    ) -> BlockedBy? {
        switch task.status {
        case .pending:
            let indexByName = indexByName ?? run.taskIndexByName
            let unmet = task.spec.needs.filter { name in
                indexByName[name].map { !RunChange.meets(run.tasks[$0]) } ?? true
            }
            return .needs(unmet)
        case .queued:
            if task.spec.approval != nil { return .awaitingApproval }
            guard let workspace = task.spec.workspace, let holder = lockHolders[workspace], holder != task.id else {
                return nil
            }
            return .workspace(workspace, heldBy: holder)
        default:
            return nil
        }
    }

    /// From the counts the run keeps as it changes (a run that has only some of its tasks at
    /// hand shows the true progress too); counted from its tasks in rows older than those.
    public static func progress(of run: Run) -> RunProgress {
        RunProgress(counts: (run.state.taskCounts ?? TaskCounts(run.tasks)).byStatus)
    }

    /// The task as a runner receives it from a claim; `trace` is the attempt's `traceparent`
    /// and `tracestate`, when its run has a trace.
    public static func claimed(_ task: RunTask, trace: (parent: String, state: String?)? = nil) -> ClaimedTask {
        ClaimedTask(
            id: task.id, runID: task.runID, name: task.name, command: task.spec.command.argv, env: task.spec.env,
            workspace: task.spec.workspace, timeoutS: task.spec.timeoutSeconds, attempt: task.state.attempt,
            labels: task.spec.labels, secretEnv: task.spec.secretEnv, traceparent: trace?.parent, tracestate: trace?.state,
            priority: task.spec.claimPriority)
    }
}
