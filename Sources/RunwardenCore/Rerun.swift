/// Which tasks of a finished run a re-run runs again (SPEC §10): `"failed"` (every task that did
/// not succeed) or a list of task names.
public enum RerunSelection: Sendable, Equatable {
    case failed
    case names([String])

    /// Reads `{"tasks": "failed" | ["name", ...]}`; an empty body or no `tasks` means `failed`.
    public static func parse(_ body: JSONValue) -> Result<RerunSelection, ValidationFailure> {
        var reader = FieldReader()
        guard reader.object(body, at: "", allowed: ["tasks"]) != nil, reader.errors.isEmpty else {
            return .failure(ValidationFailure(reader.errors))
        }
        switch body["tasks"] {
        case nil, .null:
            return .success(.failed)
        case .string("failed"):
            return .success(.failed)
        case .array(let items) where !items.isEmpty && items.count <= 10_000:
            guard let names = reader.stringList(body, "tasks", at: "") else { return .failure(ValidationFailure(reader.errors)) }
            return .success(.names(names))
        case .array(let items) where !items.isEmpty:
            return .failure(ValidationFailure([FieldError("tasks", "must name at most 10000 tasks, not \(items.count)")]))
        case .some(let other):
            let what = other == .array([]) ? "an empty list" : other.typeName
            return .failure(ValidationFailure([FieldError("tasks", "must be \"failed\" or a non-empty list of task names, not \(what)")]))
        }
    }
}

extension Run {
    /// This run's `run_attempt`: 1 for a first run (SPEC §10).
    public var runAttempt: Int { spec.runAttempt ?? 1 }

    /// A new run that repeats this finished one (SPEC §10): the selected tasks, every task that
    /// did not succeed, and every task that needs one of those, directly or not, run again; every
    /// other task is copied `succeeded` with `reused_from` and runs nothing (its runner,
    /// timestamps, exit code and `output_ref` kept). A task that did not succeed is never reused:
    /// a copy would claim a result that does not exist.
    ///
    /// Throws `409 run_not_terminal` for an unfinished run, `422` for names the run lacks or a
    /// selection that leaves nothing to run.
    public func rerun(
        _ selection: RerunSelection, id: String, taskIDs: [String], eventID: String, now: Timestamp, trace: RunTrace? = nil
    ) throws(RunwardenError) -> (run: Run, event: EventDraft) {
        precondition(taskIDs.count == tasks.count, "one id per task")
        guard status.isTerminal else {
            throw RunwardenError(.runNotTerminal, "run \(self.id) is \(status.rawValue); only a finished run can be re-run")
        }
        var again = [Bool](repeating: false, count: tasks.count)
        for index in tasks.indices where tasks[index].status != .succeeded { again[index] = true }
        if case .names(let names) = selection {
            let indexByName = taskIndexByName
            var unknown: [FieldError] = []
            for (position, name) in names.enumerated() {
                if let index = indexByName[name] {
                    again[index] = true
                } else {
                    unknown.append(FieldError("tasks[\(position)]", "run \(self.id) has no task named \"\(name)\""))
                }
            }
            if !unknown.isEmpty { throw ValidationFailure(unknown).apiError }
        }
        // Everything downstream of a task that runs again runs again: a walk along `dependents`.
        let indexByID = Dictionary(tasks.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        var stack = again.indices.filter { again[$0] }
        while let index = stack.popLast() {
            for dependent in tasks[index].dependents {
                if let next = indexByID[dependent], !again[next] {
                    again[next] = true
                    stack.append(next)
                }
            }
        }
        guard again.contains(true) else {
            throw ValidationFailure([FieldError("tasks", "selects nothing to run again: every task of run \(self.id) succeeded")])
                .apiError
        }

        var spec = self.spec
        spec.rerunOf = self.id
        spec.runAttempt = runAttempt + 1
        spec.trace = trace  // a trace of its own: the earlier run's trace has ended
        let specs = tasks.map(\.spec)
        let dependents = Self.dependents(of: specs, taskIDs: taskIDs)
        let indexByName = taskIndexByName
        let newTasks = tasks.indices.map { index in
            let old = tasks[index]
            var state = TaskState()
            if again[index] {
                let left = old.spec.needs.count { name in indexByName[name].map { again[$0] } ?? false }
                if left == 0 {
                    state.status = .queued
                    state.queuedAt = now
                } else {
                    state.needsLeft = left
                }
            } else {
                state.status = .succeeded
                state.attempt = old.state.attempt
                state.runner = old.state.runner
                state.startedAt = old.state.startedAt
                state.finishedAt = old.state.finishedAt
                state.exitCode = old.state.exitCode
                state.progress = old.state.progress
                state.outputRef = old.state.outputRef
                state.outputRefAt = old.state.outputRefAt
                state.approval = old.state.approval
                state.reusedFrom = old.id
            }
            return RunTask(id: taskIDs[index], runID: id, spec: old.spec, state: state, dependents: dependents[index])
        }
        var state = RunState(createdAt: now)
        state.taskCounts = TaskCounts(newTasks)
        let run = Run(id: id, spec: spec, state: state, tasks: newTasks)
        return (run, .runCreated(id: eventID, runID: id, at: now))
    }

    /// The earlier run learns of a re-run of it: its snapshot lists it in `reruns`. Nothing
    /// else of it changes; `version` steps so that readers waiting on it see the link.
    public mutating func recordRerun(_ rerunID: String) {
        state.reruns = (state.reruns ?? []) + [rerunID]
        state.version += 1
    }
}
