import RunwardenCore

/// `Snapshot`'s renderings as the JSON the API sends: the tests assert on the wire, not on
/// the Swift values in between.
enum Rendered {
    static func run(_ run: Run, lockHolders: [String: String], includeTasks: Bool = true) -> JSONValue {
        JSONValueEncoder.encode(Snapshot.run(run, lockHolders: lockHolders, includeTasks: includeTasks))
    }

    static func task(_ task: RunTask, in run: Run, lockHolders: [String: String], includeRunID: Bool = false) -> JSONValue {
        JSONValueEncoder.encode(Snapshot.task(task, in: run, lockHolders: lockHolders, includeRunID: includeRunID))
    }

    static func progress(_ tasks: [RunTask]) -> JSONValue { JSONValueEncoder.encode(RunProgress(counts: TaskCounts(tasks).byStatus)) }

    static func blockedBy(_ task: RunTask, in run: Run, lockHolders: [String: String]) -> JSONValue {
        JSONValueEncoder.encode(Snapshot.blockedBy(task, in: run, lockHolders: lockHolders))
    }

    static func claimed(_ task: RunTask) -> JSONValue { JSONValueEncoder.encode(Snapshot.claimed(task)) }

    static func links(_ runID: String) -> JSONValue { JSONValueEncoder.encode(RunLinks(runID: runID)) }
}
