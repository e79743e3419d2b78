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
        guard let task else { return true }
        return !task.status.isActive || task.status == .canceling || task.state.runner != runner
    }
}
