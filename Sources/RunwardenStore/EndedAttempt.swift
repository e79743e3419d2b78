import RunwardenCore

/// A claimed attempt that a change ended: its task finished, or went back to the queue as a
/// new attempt (a retry, a lost lease). Read off the task's row before and after the change,
/// because a retry clears the attempt's `claimed_at` — the span of the attempt (SPEC §11)
/// needs it, and the change is the last moment that knows it.
public struct EndedAttempt: Sendable, Equatable {
    public let taskID: String
    public let taskName: String
    public let attempt: Int
    public let claimedAt: Timestamp
    public let endedAt: Timestamp
    /// The status the attempt ended in: the task's terminal status, or `retrying`.
    public let status: String

    public init(taskID: String, taskName: String, attempt: Int, claimedAt: Timestamp, endedAt: Timestamp, status: String) {
        self.taskID = taskID
        self.taskName = taskName
        self.attempt = attempt
        self.claimedAt = claimedAt
        self.endedAt = endedAt
        self.status = status
    }

    /// The attempt `before` held that `after` no longer runs, if any.
    static func between(before: RunTask, after: RunTask, now: Timestamp) -> EndedAttempt? {
        guard before.status.isActive, let claimedAt = before.state.claimedAt else { return nil }
        let requeued = after.state.attempt != before.state.attempt
        guard requeued || !after.status.isActive else { return nil }
        return EndedAttempt(
            taskID: after.id, taskName: after.name, attempt: before.state.attempt, claimedAt: claimedAt,
            endedAt: requeued ? now : after.state.finishedAt ?? now, status: requeued ? "retrying" : after.status.rawValue)
    }
}
