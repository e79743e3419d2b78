/// Webhook subscriptions, their deliveries and payloads as the API shows them (SPEC §3, §6).

/// The body a webhook receives for one event, with the run as of that event.
public struct WebhookPayload: Codable, Sendable, Equatable {
    public var type: String
    public var eventID: String
    public var seq: Int64
    public var runSeq: Int
    public var runID: String
    public var taskID: String?
    public var workflowName: String
    public var status: String
    public var previousStatus: String?
    public var timestamp: String
    public var attempt: Int?
    public var error: RunError?
    /// The run as of the event, without its tasks (SPEC §7): a payload does not grow with the run.
    public var run: RunSnapshot
    /// For a `task.*` event, that task as the run's snapshot shows it.
    public var task: TaskSnapshot?

    /// - Parameter run: the run as committed; it must hold the event's task (a change holds
    ///   every task it emitted an event for).
    public init(_ event: Event, run: Run, lockHolders: [String: String], concurrencyHolders: [String] = []) {
        let draft = event.draft
        type = draft.type
        eventID = draft.id
        seq = event.seq
        runSeq = event.runSeq ?? 0
        runID = run.id
        taskID = draft.taskID
        workflowName = run.spec.workflow
        status = draft.status
        previousStatus = draft.previousStatus
        timestamp = draft.timestamp.iso8601
        attempt = draft.attempt
        error = draft.error
        self.run = Snapshot.run(run, lockHolders: lockHolders, concurrencyHolders: concurrencyHolders, includeTasks: false)
        task = draft.taskID.flatMap { id in run.tasks.first { $0.id == id } }.map {
            Snapshot.task($0, in: run, lockHolders: lockHolders)
        }
    }

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case type
        case eventID = "event_id"
        case seq
        case runSeq = "run_seq"
        case runID = "run_id"
        case taskID = "task_id"
        case workflowName = "workflow_name"
        case status
        case previousStatus = "previous_status"
        case timestamp, attempt, error, run, task

        public static let omittedWhenNil: Set<String> = ["task"]
    }
}

/// Whether a delivery is still being tried, got a 2xx, or gave up.
public enum DeliveryStatus: String, Sendable, Codable, CaseIterable {
    case pending, succeeded, failed
}

/// Whether a subscription receives events: `disabled` once its receiver answered `410 Gone`
/// (a deleted subscription is gone, not disabled).
public enum WebhookStatus: String, Sendable, Codable, CaseIterable {
    case active, disabled
}

public struct WebhookItem: Codable, Sendable, Equatable {
    public var id: String
    public var url: String
    public var events: [String]
    /// Only in the answer to the create: the secret is shown once.
    public var secret: String?
    public var description: String?
    public var status: WebhookStatus
    public var disabledReason: String?
    public var createdAt: String

    public init(
        id: String, url: String, events: [String], secret: String? = nil, description: String?, status: WebhookStatus,
        disabledReason: String?, createdAt: String
    ) {
        self.id = id
        self.url = url
        self.events = events
        self.secret = secret
        self.description = description
        self.status = status
        self.disabledReason = disabledReason
        self.createdAt = createdAt
    }

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case id, url, events, secret, description, status
        case disabledReason = "disabled_reason"
        case createdAt = "created_at"

        public static let omittedWhenNil: Set<String> = ["secret"]
    }
}

public struct DeliveryItem: Codable, Sendable, Equatable {
    public var id: String
    /// Null for a run's `callback_url` delivery.
    public var webhookID: String?
    public var eventID: String
    public var seq: Int64
    /// Null for a runner's event (SPEC §8).
    public var runID: String?
    public var type: String
    public var status: DeliveryStatus
    public var attempts: [DeliveryAttemptItem]
    public var nextAttemptAt: String?
    public var createdAt: String

    public init(
        id: String, webhookID: String?, eventID: String, seq: Int64, runID: String?, type: String, status: DeliveryStatus,
        attempts: [DeliveryAttemptItem], nextAttemptAt: String?, createdAt: String
    ) {
        self.id = id
        self.webhookID = webhookID
        self.eventID = eventID
        self.seq = seq
        self.runID = runID
        self.type = type
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case id
        case webhookID = "webhook_id"
        case eventID = "event_id"
        case seq
        case runID = "run_id"
        case type, status, attempts
        case nextAttemptAt = "next_attempt_at"
        case createdAt = "created_at"
    }
}

public struct DeliveryAttemptItem: Codable, Sendable, Equatable {
    public var at: String
    public var statusCode: Int?
    public var latencyMs: Int
    public var error: String?

    public init(at: String, statusCode: Int?, latencyMs: Int, error: String?) {
        self.at = at
        self.statusCode = statusCode
        self.latencyMs = latencyMs
        self.error = error
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case at
        case statusCode = "status_code"
        case latencyMs = "latency_ms"
        case error
    }
}

/// `POST /v1/webhooks/{id}/recover`: how many failed deliveries were queued again.
public struct RecoverResult: Codable, Sendable, Equatable {
    public var requeued: Int
    public init(requeued: Int) { self.requeued = requeued }
    public enum CodingKeys: String, CodingKey, CaseIterable { case requeued }
}

/// A page of any list but runs: `{"items": [...], "next_cursor": ...}`.
public struct Page<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case items
        case nextCursor = "next_cursor"
    }
}

/// A held workspace lock (SPEC §2 `GET /v1/locks`).
public struct LockItem: Codable, Sendable, Equatable {
    public var workspace: String
    public var taskID: String
    public var runID: String
    public var runner: String
    public var acquiredAt: String

    public init(workspace: String, taskID: String, runID: String, runner: String, acquiredAt: String) {
        self.workspace = workspace
        self.taskID = taskID
        self.runID = runID
        self.runner = runner
        self.acquiredAt = acquiredAt
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case workspace
        case taskID = "task_id"
        case runID = "run_id"
        case runner
        case acquiredAt = "acquired_at"
    }
}
