/// When the server itself must act on a task or run (SPEC §1): timeouts fire even when no
/// runner is left to report them.
extension RunTask {
    /// The moment a started task runs out of its `timeout_s`, counted from its start; for an
    /// approval task, the moment its wait for a decision runs out.
    public var timeoutDeadline: Timestamp? {
        if let approval = spec.approval {
            // An approval task's own limit counts from when it began to wait (`queued`).
            guard status == .queued, let queued = state.queuedAt, let seconds = approval.timeoutSeconds else { return nil }
            return queued.adding(seconds: seconds)
        }
        guard status == .running || status == .canceling, let started = state.startedAt, let seconds = spec.timeoutSeconds else {
            return nil
        }
        return started.adding(seconds: seconds)
    }
}

extension Run {
    /// The moment an unfinished run runs out of its `timeout_s`, counted from its creation.
    /// None while `canceling`: the user's cancel stands.
    public var timeoutDeadline: Timestamp? {
        guard status == .queued || status == .running, let seconds = spec.timeoutSeconds else { return nil }
        return state.createdAt.adding(seconds: seconds)
    }
}
