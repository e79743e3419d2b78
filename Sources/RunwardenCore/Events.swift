/// An event as a transition produces it; the store gives it its `seq` and `run_seq`.
/// A run's event has a `runID`; a runner's (`runner.*`, SPEC §8) has none, and a `runner`.
public struct EventDraft: Sendable, Equatable {
    public var id: String
    public var runID: String?
    public var taskID: String?
    public var type: String
    public var status: String
    public var previousStatus: String?
    public var timestamp: Timestamp
    public var attempt: Int?
    public var error: RunError?
    /// The runner a `runner.*` event is about; nil for a run's events.
    public var runner: String?
    /// The decision an approve or reject made (SPEC §10): who, when, and their comment.
    public var approval: ApprovalDecision?

    public init(
        id: String, runID: String?, taskID: String?, type: String, status: String, previousStatus: String?,
        timestamp: Timestamp, attempt: Int?, error: RunError?, runner: String? = nil, approval: ApprovalDecision? = nil
    ) {
        self.approval = approval
        self.id = id
        self.runID = runID
        self.taskID = taskID
        self.type = type
        self.status = status
        self.previousStatus = previousStatus
        self.timestamp = timestamp
        self.attempt = attempt
        self.error = error
        self.runner = runner
    }
}

/// A committed event (SPEC §2 "Events"): `seq` is global, `runSeq` counts the run's own events
/// (nil for a runner's event, which belongs to no run).
public struct Event: Sendable, Equatable {
    public var seq: Int64
    public var runSeq: Int?
    public var draft: EventDraft

    public init(seq: Int64, runSeq: Int?, draft: EventDraft) {
        self.seq = seq
        self.runSeq = runSeq
        self.draft = draft
    }
}

public enum EventType {
    public static let runCreated = "run.created"
    public static let taskRetrying = "task.retrying"
    public static func run(_ status: RunStatus) -> String { "run." + status.rawValue }
    public static func task(_ status: TaskStatus) -> String { "task." + status.rawValue }
    public static func runner(_ status: RunnerStatus) -> String { "runner." + status.rawValue }

    /// Every type an event may have: what a webhook subscription may name, and what the API
    /// reference must document.
    public static let all: [String] =
        [runCreated] + RunStatus.allCases.map(run) + [taskRetrying] + TaskStatus.allCases.map(task)
        + RunnerStatus.allCases.map(runner)
}
