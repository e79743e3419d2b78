/// Claim matching: a runner may take a task when it has every label the task asks for.
public enum LabelMatch {
    public static func runner(_ runnerLabels: Set<String>, canRun task: TaskSpec) -> Bool {
        task.labels.allSatisfy(runnerLabels.contains)
    }
}

/// Whether a runner must stop a task it names in a heartbeat (SPEC §2 "Runner protocol"):
/// it is unknown, finished, being canceled, or not claimed by this runner.
public enum HeartbeatVerdict {
    public static func mustStop(_ task: RunTask?, runner: String) -> Bool {
        mustStop(status: task?.status, holder: task?.state.runner, runner: runner)
    }

    /// The same verdict from the two columns a store keeps for every task.
    public static func mustStop(status: TaskStatus?, holder: String?, runner: String) -> Bool {
        guard let status else { return true }
        return !status.isActive || status == .canceling || holder != runner
    }
}
