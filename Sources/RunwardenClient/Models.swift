/// The API's JSON objects as the client reads them (snake_case keys decoded to camelCase).
public struct RunSnapshot: Decodable, Sendable {
    public var id: String
    public var workflow: String
    public var status: String
    public var version: Int
    public var createdAt: String
    public var updatedAt: String
    public var startedAt: String?
    public var finishedAt: String?
    public var durationMs: Int?
    public var error: APIErrorObject?
    public var progress: RunProgress
    public var tasks: [TaskSnapshot]?
    public var outputRef: String?

    public var isTerminal: Bool { ["succeeded", "failed", "canceled", "timed_out"].contains(status) }
}

public struct RunProgress: Decodable, Sendable {
    public var total: Int
    public var pending: Int
    public var queued: Int
    public var dispatched: Int
    public var running: Int
    public var canceling: Int
    public var succeeded: Int
    public var failed: Int
    public var canceled: Int
    public var timedOut: Int
    public var skipped: Int
    public var percent: Int
}

public struct TaskSnapshot: Decodable, Sendable {
    public var id: String
    public var runId: String?
    public var name: String
    public var status: String
    public var attempt: Int
    public var runner: String?
    public var workspace: String?
    public var startedAt: String?
    public var finishedAt: String?
    public var exitCode: Int?
    public var error: APIErrorObject?
}

public struct APIErrorObject: Decodable, Sendable {
    public var code: String
    public var message: String
    public var taskId: String?
    public var retryable: Bool?
}

public struct RunList: Decodable, Sendable {
    public var items: [RunSnapshot]
    public var nextCursor: String?
}

public struct RunEvent: Decodable, Sendable {
    public var id: String
    public var seq: Int64
    public var runSeq: Int
    public var runId: String
    public var taskId: String?
    public var type: String
    public var status: String
    public var previousStatus: String?
    public var timestamp: String
    public var attempt: Int?
    public var error: APIErrorObject?
}

public struct EventPage: Decodable, Sendable {
    public var events: [RunEvent]
    public var nextAfter: Int64
}

/// A task as a claim hands it to a runner.
public struct ClaimedTask: Decodable, Sendable, Equatable {
    public var id: String
    public var runId: String
    public var name: String
    public var command: [String]
    public var env: [String: String]
    public var workspace: String?
    public var timeoutS: Int?
    public var attempt: Int
    public var labels: [String]

    public init(
        id: String, runId: String, name: String, command: [String], env: [String: String] = [:], workspace: String? = nil,
        timeoutS: Int? = nil, attempt: Int = 1, labels: [String] = []
    ) {
        self.id = id
        self.runId = runId
        self.name = name
        self.command = command
        self.env = env
        self.workspace = workspace
        self.timeoutS = timeoutS
        self.attempt = attempt
        self.labels = labels
    }
}

public struct ClaimAnswer: Decodable, Sendable {
    public var task: ClaimedTask
    public var leaseS: Int
}

public struct HeartbeatAnswer: Decodable, Sendable {
    public var cancel: [String]
    public var leaseS: Int
}

public struct ReportAnswer: Decodable, Sendable {
    public var applied: Bool
    public var task: TaskSnapshot
}
