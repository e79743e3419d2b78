/// An event as the API shows it (SPEC §2 "Events"): on timelines, `/v1/events` and streams.
/// A runner's event (`runner.*`, SPEC §8) has `run_id` and `run_seq` null and names its `runner`.
public struct RunEvent: Codable, Sendable, Equatable {
    public var id: String
    public var seq: Int64
    public var runSeq: Int?
    public var runID: String?
    public var taskID: String?
    /// `run.created`, `run.<status>`, `task.<status>`, `task.retrying` or `runner.<status>` (`EventType`).
    public var type: String
    /// The run's status for `run.*` events, the task's for `task.*`: a `TaskStatus` raw value
    /// either way (every run status is also a task status).
    public var status: String
    public var previousStatus: String?
    public var timestamp: String
    public var attempt: Int?
    /// The task's error (`code`, `message`, `retryable`) or the run's (with `task_id`, `cause`).
    public var error: RunError?
    /// The runner a `runner.*` event is about; left out of a run's events.
    public var runner: String?
    /// An approve's or reject's decision (SPEC §10); left out of every other event.
    public var approval: ApprovalWire?

    /// The run's status a `run.*` event reports; nil for task and runner events.
    public var runStatus: RunStatus? { runID != nil && taskID == nil ? RunStatus(rawValue: status) : nil }

    public init(_ event: Event) {
        let draft = event.draft
        id = draft.id
        seq = event.seq
        runSeq = event.runSeq
        runID = draft.runID
        taskID = draft.taskID
        type = draft.type
        status = draft.status
        previousStatus = draft.previousStatus
        timestamp = draft.timestamp.iso8601
        attempt = draft.attempt
        error = draft.error
        runner = draft.runner
        approval = draft.approval.map(ApprovalWire.init)
    }

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case id, seq
        case runSeq = "run_seq"
        case runID = "run_id"
        case taskID = "task_id"
        case type, status
        case previousStatus = "previous_status"
        case timestamp, attempt, error, runner, approval

        public static let omittedWhenNil: Set<String> = ["runner", "approval"]
    }
}

/// `{"events": [...], "next_after": SEQ}`; an empty page echoes `after` (SPEC §2).
public struct EventPage: Codable, Sendable, Equatable {
    public var events: [RunEvent]
    public var nextAfter: Int64

    public init(events: [RunEvent], nextAfter: Int64) {
        self.events = events
        self.nextAfter = nextAfter
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case events
        case nextAfter = "next_after"
    }
}
