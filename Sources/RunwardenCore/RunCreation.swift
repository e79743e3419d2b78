extension Run {
    /// A new run from a validated definition: `version` 1, tasks without needs `queued`, the
    /// others `pending`, and one event, `run.created` (SPEC §2 "Details").
    public static func create(
        _ definition: RunDefinition, id: String, taskIDs: [String], eventID: String, now: Timestamp
    ) -> (run: Run, event: EventDraft) {
        precondition(taskIDs.count == definition.tasks.count, "one id per task")
        var state = RunState(createdAt: now)
        state.lastRunSeq = 0
        let tasks = zip(definition.tasks, taskIDs).map { spec, taskID in
            var taskState = TaskState()
            if spec.needs.isEmpty {
                taskState.status = .queued
                taskState.queuedAt = now
            }
            return RunTask(id: taskID, runID: id, spec: spec, state: taskState)
        }
        let run = Run(id: id, spec: definition.run, state: state, tasks: tasks)
        let event = EventDraft(
            id: eventID, runID: id, taskID: nil, type: EventType.runCreated, status: RunStatus.queued.rawValue,
            previousStatus: nil, timestamp: now, attempt: nil, error: nil)
        return (run, event)
    }
}
