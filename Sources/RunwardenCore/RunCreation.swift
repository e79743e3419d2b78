extension Run {
    /// A new run from a validated definition: `version` 1, tasks without needs `queued`, the
    /// others `pending`, and one event, `run.created` (SPEC §2 "Details").
    public static func create(
        _ definition: RunDefinition, id: String, taskIDs: [String], eventID: String, now: Timestamp
    ) -> (run: Run, event: EventDraft) {
        precondition(taskIDs.count == definition.tasks.count, "one id per task")
        var state = RunState(createdAt: now)
        state.lastRunSeq = 0
        let dependents = Self.dependents(of: definition.tasks, taskIDs: taskIDs)
        let tasks = zip(definition.tasks, taskIDs).enumerated().map { position, item in
            let (spec, taskID) = item
            var taskState = TaskState()
            if spec.needs.isEmpty {
                taskState.status = .queued
                taskState.queuedAt = now
            } else {
                taskState.needsLeft = spec.needs.count
            }
            return RunTask(id: taskID, runID: id, spec: spec, state: taskState, dependents: dependents[position])
        }
        state.taskCounts = TaskCounts(tasks)
        let run = Run(id: id, spec: definition.run, state: state, tasks: tasks)
        return (run, .runCreated(id: eventID, runID: id, at: now))
    }

    /// For each task, the ids of the tasks that need it, in run order.
    public static func dependents(of specs: [TaskSpec], taskIDs: [String]) -> [[String]] {
        var positionByName: [String: Int] = [:]
        for (position, spec) in specs.enumerated() where positionByName[spec.name] == nil { positionByName[spec.name] = position }
        var dependents = [[String]](repeating: [], count: specs.count)
        for (position, spec) in specs.enumerated() {
            for need in spec.needs {
                if let needed = positionByName[need] { dependents[needed].append(taskIDs[position]) }
            }
        }
        return dependents
    }
}

extension EventDraft {
    /// A new run's one event (SPEC §2 "Details"), whether created or re-run.
    public static func runCreated(id: String, runID: String, at now: Timestamp) -> EventDraft {
        EventDraft(
            id: id, runID: runID, taskID: nil, type: EventType.runCreated, status: RunStatus.queued.rawValue,
            previousStatus: nil, timestamp: now, attempt: nil, error: nil)
    }
}
