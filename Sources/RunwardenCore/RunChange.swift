/// Why a report or command cannot be applied at all (as opposed to `applied: false`).
public enum TransitionError: Error, Equatable, Sendable {
    /// The task was never handed out, the attempt is in the future, or another runner holds it.
    case taskNotClaimed(String)
    /// The run already ended; it cannot be canceled.
    case runTerminal(RunStatus)
    /// The task is not `queued` (or its workspace is held): it cannot be claimed.
    case notClaimable
    /// An approve or reject of a task that is not an approval task waiting `queued` (SPEC §10).
    case notAwaitingApproval(String)
}

/// One committed change of a run: every transition (SPEC §1) is a method here. It collects the
/// events it causes, and `committed` steps `version` once if anything visible changed.
///
/// A change costs what it changes: the store loads the run's own row and only the tasks the
/// change is about (`ChangeScope`: a task and the tasks that need it), and the run's task
/// counts and each pending task's `needsLeft` stand in for the rest. Only when a change reaches
/// past what it loaded — the run fails, ends, is canceled, or a skip cascades — does it set
/// `needsWholeRun`; the store then loads every task and applies the change again from the start.
public struct RunChange: Sendable {
    public private(set) var run: Run
    public private(set) var events: [EventDraft] = []
    /// Something a reader can see changed (status, progress, output); steps `version` once.
    public private(set) var isVisible = false
    public let now: Timestamp
    /// Whether `run.tasks` holds every task of the run, not just the change's scope.
    public let hasWholeRun: Bool
    /// The change needs tasks it did not load: discard it and apply it again to the whole run.
    public private(set) var needsWholeRun = false
    /// Positions (in `run.tasks`) of the tasks that ended in this change, in the order they
    /// ended: whoever needs them is looked at next.
    private var ended: [Int] = []

    public init(_ run: Run, now: Timestamp, hasWholeRun: Bool = true) {
        self.run = run
        self.now = now
        self.hasWholeRun = hasWholeRun
        if hasWholeRun { recount() }
    }

    /// The run as it is to be stored.
    public var committed: Run {
        var result = run
        if isVisible {
            result.state.version += 1
            result.state.updatedAt = now
        }
        return result
    }

    /// With every task at hand, the kept counts are recounted (so rows written before they
    /// were kept, or any drift, are put right by the next whole-run change).
    private mutating func recount() {
        run.state.taskCounts = TaskCounts(run.tasks)
        let indexByName = run.taskIndexByName
        for index in run.tasks.indices where run.tasks[index].status == .pending {
            let unmet = run.tasks[index].spec.needs.count { name in indexByName[name].map { !Self.meets(run.tasks[$0]) } ?? true }
            run.tasks[index].state.needsLeft = unmet
        }
    }

    /// Stops applying this change: the store applies it again to the whole run. (A change of
    /// the whole run has every task at hand; there only a corrupt row could lead here, and
    /// the change goes on without what it names.)
    private mutating func wantWholeRun() {
        if !hasWholeRun { needsWholeRun = true }
    }

    // MARK: - Claim

    /// A runner takes a `queued` task: it becomes `dispatched`, takes its workspace lock, and the
    /// run becomes `running`. The store has checked that the workspace is free.
    public mutating func claim(taskID: String, runner: String, claimID: String? = nil) throws(TransitionError) {
        guard let index = run.taskIndex(id: taskID), run.tasks[index].status == .queued, run.tasks[index].spec.approval == nil,
            !run.status.isTerminal, run.status != .canceling
        else { throw .notClaimable }
        run.tasks[index].state.runner = runner
        run.tasks[index].state.claimID = claimID
        run.tasks[index].state.claimedAt = now
        run.tasks[index].state.heartbeatAt = now
        run.tasks[index].state.holdsLock = run.tasks[index].spec.workspace != nil
        setTask(index, .dispatched, at: now)
        settle()
    }

    // MARK: - Reports

    /// Applies a runner's report; returns whether it changed anything (`applied`).
    /// Checks in SPEC's order: older attempt or duplicate → false; never claimed, future attempt or
    /// another runner → `taskNotClaimed`. A per-runner token's `scope` (SPEC §8) reports only the
    /// tasks claimed under a name it allows.
    public mutating func report(
        taskID: String, _ report: StatusReport, runner: String?, scope: RunnerTokenScope? = nil
    ) throws(TransitionError) -> Bool {
        guard let index = run.taskIndex(id: taskID) else { throw .taskNotClaimed("unknown task \(taskID)") }
        let task = run.tasks[index]
        let attempt = report.attempt ?? task.state.attempt
        if attempt < task.state.attempt || task.status.isTerminal { return false }
        if attempt > task.state.attempt {
            throw .taskNotClaimed("attempt \(attempt) of task \(taskID) was never handed out (current attempt: \(task.state.attempt))")
        }
        guard let holder = task.state.runner, task.status.isActive else {
            throw .taskNotClaimed("task \(taskID) is \(task.status.rawValue) and has not been claimed by any runner")
        }
        if let runner, runner != holder {
            throw .taskNotClaimed("task \(taskID) is claimed by runner \"\(holder)\", not \"\(runner)\"")
        }
        if let scope, !scope.allows(runner: holder) {
            throw .taskNotClaimed("task \(taskID) is claimed by runner \"\(holder)\", which this token may not act as")
        }

        if report.status == .failed, report.error?.code == TaskErrorCode.heartbeatLost.rawValue {
            // The runner could not heartbeat for a whole lease and stopped the task itself: the
            // same loss the reaper would find, so the same rule — a retry while retries remain.
            // (A server that was down meanwhile gave the task a fresh lease on restart and
            // would otherwise take this as a plain failure.)
            leaseExpired(taskID: taskID)
            return true
        }
        let at = saneTimestamp(report.timestamp, notBefore: task.state.claimedAt ?? run.state.createdAt)
        let dataChanged = applyData(of: report, to: index, at: at)
        guard report.status.rank > task.status.rank else {
            // Same or earlier status: a duplicate, or an update of progress/output only.
            if report.status == .running, run.tasks[index].state.startedAt == nil {
                run.tasks[index].state.startedAt = at
                isVisible = true
                return true
            }
            if dataChanged { isVisible = true }
            return dataChanged
        }

        if run.tasks[index].state.startedAt == nil { run.tasks[index].state.startedAt = at }
        if report.status.isTerminal {
            finishTask(index, report.status, at: at, exitCode: report.exitCode, error: resolvedError(report))
        } else {
            setTask(index, report.status, at: at)
        }
        settle()
        return true
    }

    /// A report's timestamp when it is sane — not before the claim, not in the future — else now.
    func saneTimestamp(_ reported: Timestamp?, notBefore earliest: Timestamp) -> Timestamp {
        guard let reported, reported >= earliest, reported <= now else { return now }
        return reported
    }

    private mutating func applyData(of report: StatusReport, to index: Int, at: Timestamp) -> Bool {
        var changed = false
        if let progress = report.progress, progress != run.tasks[index].state.progress {
            run.tasks[index].state.progress = progress
            changed = true
        }
        if let outputRef = report.outputRef, outputRef != run.tasks[index].state.outputRef {
            run.tasks[index].state.outputRef = outputRef
            run.tasks[index].state.outputRefAt = at
            changed = true
        }
        return changed
    }

    private func resolvedError(_ report: StatusReport) -> TaskError? {
        switch report.status {
        case .failed:
            if let error = report.error { return error }
            let message = report.exitCode.map { "the command exited with code \($0)" } ?? "the task failed"
            return TaskError(.exitCode, message)
        case .timedOut:
            return report.error ?? TaskError(.timeout, "the task ran past its timeout")
        case .canceled:
            return report.error ?? TaskError(.canceled, "the task was canceled")
        default:
            return nil
        }
    }

    // MARK: - Approvals

    /// A person approves (`succeeded`) or rejects (`failed`, error `rejected`) an approval task
    /// that waits `queued` (SPEC §10); the decision is kept in the task and in its event.
    public mutating func decideApproval(taskID: String, _ decision: ApprovalDecision) throws(TransitionError) {
        guard let index = run.taskIndex(id: taskID) else { throw .notAwaitingApproval("no task \(taskID) in this run") }
        let task = run.tasks[index]
        guard task.spec.approval != nil else { throw .notAwaitingApproval("task \(taskID) is not an approval task") }
        guard task.status == .queued, !run.status.isTerminal, run.status != .canceling else {
            throw .notAwaitingApproval("task \(taskID) is \(task.status.rawValue), not waiting for approval")
        }
        run.tasks[index].state.approval = decision
        run.tasks[index].state.startedAt = decision.at
        if decision.approved {
            finishTask(index, .succeeded, at: decision.at, exitCode: nil, error: nil)
        } else {
            let by = "rejected by \(decision.by)"
            let message = decision.comment.map { "\(by): \($0)" } ?? by
            finishTask(index, .failed, at: decision.at, exitCode: nil, error: TaskError(code: TaskErrorCode.rejected.rawValue, message: message))
        }
        settle()
    }

    // MARK: - Concurrency keys

    /// The run takes a slot of its key (SPEC §10): its tasks with no needs left become `queued`
    /// (one `task.queued` event each, as needs releasing them would give). Needs the whole run.
    public mutating func admit() {
        guard run.state.concurrencySlot == .waiting, !run.status.isTerminal, run.status != .canceling else { return }
        guard hasWholeRun else { return wantWholeRun() }
        run.state.concurrencySlot = .holding
        isVisible = true  // its `blocked_by` is gone
        for index in run.tasks.indices where run.tasks[index].status == .pending && run.tasks[index].state.needsLeft == 0 {
            run.tasks[index].state.queuedAt = now
            setTask(index, .queued, at: now)
        }
    }

    // MARK: - Cancel and timeouts

    /// A user cancel (SPEC §1): authoritative over rollup. A second cancel while `canceling` is
    /// accepted and changes nothing; a terminal run cannot be canceled.
    public mutating func cancel() throws(TransitionError) {
        if run.status.isTerminal { throw .runTerminal(run.status) }
        if run.status == .canceling { return }
        guard hasWholeRun else { return wantWholeRun() }
        stopUnfinishedTasks(reason: TaskError(.canceled, "the run was canceled"))
        setRun(hasActiveTasks ? .canceling : .canceled)
    }

    /// The run's own `timeout_s` passed: it ends `timed_out` and its unfinished tasks are stopped
    /// as for a cancel. A run that is `canceling` stays so: the user's cancel stands.
    public mutating func runTimedOut() {
        guard !run.status.isTerminal, run.status != .canceling else { return }
        guard hasWholeRun else { return wantWholeRun() }
        let seconds = run.spec.timeoutSeconds.map { "\($0) s" } ?? "its limit"
        stopUnfinishedTasks(reason: TaskError(.canceled, "the run timed out"))
        run.state.error = RunError(
            code: RunError.runTimeout, message: "the run did not finish within \(seconds)", taskID: nil,
            retryable: false, cause: nil)
        setRun(.timedOut)
    }

    /// A task ran past its own `timeout_s`, counted from its start: it ends `timed_out`.
    public mutating func taskTimedOut(taskID: String) {
        if let index = run.taskIndex(id: taskID), let approval = run.tasks[index].spec.approval, run.tasks[index].status == .queued {
            // An approval task nobody decided on within its own `timeout_s`.
            let seconds = approval.timeoutSeconds.map { "\($0) s" } ?? "its limit"
            finishTask(index, .timedOut, at: now, exitCode: nil, error: TaskError(.timeout, "no approval within \(seconds)"))
            return settle()
        }
        guard let index = run.taskIndex(id: taskID), run.tasks[index].status.isActive else { return }
        let seconds = run.tasks[index].spec.timeoutSeconds.map { "\($0) s" } ?? "its limit"
        if run.tasks[index].status == .canceling {
            finishTask(index, .canceled, at: now, exitCode: nil, error: TaskError(.canceled, "the task was canceled"))
        } else {
            finishTask(
                index, .timedOut, at: now, exitCode: nil,
                error: TaskError(.timeout, "the task did not finish within \(seconds)"))
        }
        settle()
    }

    /// The task's runner stopped heartbeating for a whole lease. A `canceling` task ends
    /// `canceled`; otherwise it is queued again as a new attempt while retries remain, else it
    /// ends `failed` with `heartbeat_lost`.
    public mutating func leaseExpired(taskID: String) {
        guard let index = run.taskIndex(id: taskID), run.tasks[index].status.isActive else { return }
        let task = run.tasks[index]
        if task.status == .canceling {
            finishTask(index, .canceled, at: now, exitCode: nil, error: TaskError(.canceled, "the task was canceled"))
        } else if task.state.attempt <= task.spec.retries {
            let previous = task.status
            var retry = TaskState()
            retry.status = .queued
            retry.attempt = task.state.attempt + 1
            retry.queuedAt = now
            retry.progress = nil
            retry.needsLeft = task.state.needsLeft
            run.tasks[index].state = retry
            run.state.taskCounts?.move(from: previous, to: .queued)
            emitTask(index, type: EventType.taskRetrying, status: .queued, previous: previous, at: now)
        } else {
            let runner = task.state.runner ?? "its runner"
            finishTask(
                index, .failed, at: now, exitCode: nil,
                error: TaskError(.heartbeatLost, "no heartbeat from \(runner) for a whole lease"))
        }
        settle()
    }

    /// A client released the task's workspace lock by hand. Not a status change: no version step.
    public mutating func lockReleased(taskID: String) {
        guard let index = run.taskIndex(id: taskID) else { return }
        run.tasks[index].state.holdsLock = false
    }

    /// A heartbeat: refreshes `heartbeat_at` of the given tasks this runner holds; no version step.
    public mutating func heartbeat(taskIDs: Set<String>, runner: String) {
        for index in run.tasks.indices where taskIDs.contains(run.tasks[index].id) {
            let task = run.tasks[index]
            if task.status.isActive, task.state.runner == runner { run.tasks[index].state.heartbeatAt = now }
        }
    }

    // MARK: - Rollup

    private var hasActiveTasks: Bool { (run.state.taskCounts?.active ?? 0) > 0 }

    /// Brings the run in line with its tasks (SPEC §1 "Run rollup"): releases pending tasks whose
    /// needs are met, skips those whose needs can no longer be met, and rolls up the run status.
    mutating func settle() {
        if run.status.isTerminal || needsWholeRun { return }
        guard let counts = run.state.taskCounts else { return wantWholeRun() }
        if run.status == .canceling {
            if counts.active == 0 { setRun(.canceled) }
            return
        }
        releaseDependents()
        if needsWholeRun { return }
        // A task that fails the run ended in this change: an earlier one would have failed it.
        if let failed = run.tasks.first(where: { Self.failsRun($0) }) {
            guard hasWholeRun else { return wantWholeRun() }
            let cause = failed.state.error ?? TaskError(.exitCode, "the task \(failed.status.rawValue)")
            run.state.error = RunError(
                code: RunError.taskFailed, message: "task \"\(failed.name)\" \(failed.status.rawValue): \(cause.message)",
                taskID: failed.id, retryable: cause.retryable, cause: cause)
            // Task events first: the run's terminal event closes its stream, so it comes last.
            for index in run.tasks.indices {
                switch run.tasks[index].status {
                case .pending, .queued: finishTask(index, .skipped, at: now, exitCode: nil, error: nil)
                case .dispatched, .running: setTask(index, .canceling, at: now)
                default: break
                }
            }
            setRun(.failed)
        } else if let counts = run.state.taskCounts, counts.finished == counts.total {
            guard hasWholeRun else { return wantWholeRun() }
            run.state.outputRef = run.tasks.filter { $0.state.outputRef != nil }
                .max { ($0.state.outputRefAt ?? now) < ($1.state.outputRefAt ?? now) }?.state.outputRef
            setRun(.succeeded)
        } else if run.status == .queued, run.tasks.contains(where: { $0.status.rank >= TaskStatus.dispatched.rank && $0.state.claimedAt != nil }) {
            setRun(.running)
        }
    }

    /// A task ending this way fails its run unless it may fail.
    static func failsRun(_ task: RunTask) -> Bool {
        switch task.status {
        case .failed, .timedOut, .canceled: !task.spec.allowFailure
        default: false
        }
    }

    /// A need is met by `succeeded`, or by `failed`/`timed_out` of a task that may fail.
    static func meets(_ task: RunTask) -> Bool {
        switch task.status {
        case .succeeded: true
        case .failed, .timedOut: task.spec.allowFailure
        default: false
        }
    }

    /// Looks only at the tasks that need a task that ended in this change: a met need counts
    /// their `needsLeft` down (queued at 0); an unmet one skips them, and their own dependents
    /// in turn. Costs the ended tasks' out-degree, whatever the run's width.
    private mutating func releaseDependents() {
        guard ended.contains(where: { !run.tasks[$0].dependents.isEmpty }) else { return }
        let indexByID = Dictionary(run.tasks.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        var next = 0
        while next < ended.count {
            let task = run.tasks[ended[next]]
            next += 1
            let met = Self.meets(task)
            for dependentID in task.dependents {
                guard let index = indexByID[dependentID] else {
                    if hasWholeRun { continue }
                    return wantWholeRun()
                }
                guard run.tasks[index].status == .pending else { continue }
                if met {
                    guard let left = run.tasks[index].state.needsLeft else {
                        if hasWholeRun { continue }
                        return wantWholeRun()
                    }
                    run.tasks[index].state.needsLeft = max(0, left - 1)
                    if left <= 1 {
                        run.tasks[index].state.queuedAt = now
                        setTask(index, .queued, at: now)
                    }
                } else {
                    let reason = TaskError(.needsNotMet, "needed task \"\(task.name)\" ended \(task.status.rawValue)")
                    finishTask(index, .skipped, at: now, exitCode: nil, error: reason)
                }
            }
        }
    }

    private mutating func stopUnfinishedTasks(reason: TaskError) {
        for index in run.tasks.indices {
            switch run.tasks[index].status {
            case .pending, .queued: finishTask(index, .canceled, at: now, exitCode: nil, error: reason)
            case .dispatched, .running: setTask(index, .canceling, at: now)
            default: break
            }
        }
    }

    // MARK: - Primitive steps: the only places that change a status

    private mutating func finishTask(_ index: Int, _ status: TaskStatus, at: Timestamp, exitCode: Int?, error: TaskError?) {
        run.tasks[index].state.finishedAt = at
        run.tasks[index].state.exitCode = exitCode
        run.tasks[index].state.error = error
        run.tasks[index].state.holdsLock = false
        setTask(index, status, at: at)
    }

    private mutating func setTask(_ index: Int, _ status: TaskStatus, at: Timestamp) {
        let previous = run.tasks[index].status
        guard previous != status else { return }
        run.tasks[index].state.status = status
        run.state.taskCounts?.move(from: previous, to: status)
        if status.isTerminal, !previous.isTerminal { ended.append(index) }
        emitTask(index, type: EventType.task(status), status: status, previous: previous, at: at)
    }

    private mutating func emitTask(_ index: Int, type: String, status: TaskStatus, previous: TaskStatus, at: Timestamp) {
        let task = run.tasks[index]
        events.append(
            EventDraft(
                id: Identifier.make(.evt, at: now), runID: run.id, taskID: task.id, type: type, status: status.rawValue,
                previousStatus: previous.rawValue, timestamp: at, attempt: task.state.attempt, error: task.state.error.map(RunError.init),
                approval: status.isTerminal ? task.state.approval : nil))
        isVisible = true
    }

    private mutating func setRun(_ status: RunStatus) {
        let previous = run.status
        guard previous != status else { return }
        run.state.status = status
        if status == .running, run.state.startedAt == nil { run.state.startedAt = now }
        if status.isTerminal {
            run.state.finishedAt = now
            // Every kind of end gives up the run's concurrency slot in the same change (SPEC §10).
            if run.state.concurrencySlot != nil { run.state.concurrencySlot = .released }
        }
        events.append(
            EventDraft(
                id: Identifier.make(.evt, at: now), runID: run.id, taskID: nil, type: EventType.run(status),
                status: status.rawValue, previousStatus: previous.rawValue, timestamp: now, attempt: nil,
                error: run.state.error))
        isVisible = true
    }
}
