/// The runner protocol's answers (SPEC §2 "Runner protocol").

/// A task as a claim hands it to a runner.
public struct ClaimedTask: Codable, Sendable, Equatable {
    public var id: String
    public var runID: String
    public var name: String
    public var command: [String]
    public var env: [String: String]
    public var workspace: String?
    public var timeoutS: Int?
    public var attempt: Int
    public var labels: [String]
    /// Passed to the process like `env`; masked as `***` in its log (SPEC §9). Absent when none.
    public var secretEnv: [String: String]?
    /// The attempt's W3C trace context (SPEC §11), given to the process as `TRACEPARENT` and
    /// `TRACESTATE`: spans the task makes join the run's trace under the attempt's span.
    /// Absent when the run has no trace.
    public var traceparent: String?
    public var tracestate: String?
    /// The task's priority (SPEC §10), for the runner's logs. Always written; optional so that a
    /// runner still reads a server from before it was sent.
    public var priority: Int?

    public init(
        id: String, runID: String, name: String, command: [String], env: [String: String] = [:], workspace: String? = nil,
        timeoutS: Int? = nil, attempt: Int = 1, labels: [String] = [], secretEnv: [String: String]? = nil,
        traceparent: String? = nil, tracestate: String? = nil, priority: Int? = nil
    ) {
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.secretEnv = secretEnv
        self.priority = priority
        self.id = id
        self.runID = runID
        self.name = name
        self.command = command
        self.env = env
        self.workspace = workspace
        self.timeoutS = timeoutS
        self.attempt = attempt
        self.labels = labels
    }

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case id
        case runID = "run_id"
        case name, command, env, workspace
        case timeoutS = "timeout_s"
        case attempt, labels
        case secretEnv = "secret_env"
        case traceparent, tracestate, priority

        public static let omittedWhenNil: Set<String> = ["secret_env", "traceparent", "tracestate"]
    }
}

public struct ClaimAnswer: Codable, Sendable, Equatable {
    public var task: ClaimedTask
    public var leaseS: Int

    public init(task: ClaimedTask, leaseS: Int) {
        self.task = task
        self.leaseS = leaseS
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case task
        case leaseS = "lease_s"
    }
}

public struct HeartbeatAnswer: Codable, Sendable, Equatable {
    public var cancel: [String]
    public var leaseS: Int

    public init(cancel: [String], leaseS: Int) {
        self.cancel = cancel
        self.leaseS = leaseS
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case cancel
        case leaseS = "lease_s"
    }
}

public struct ReportAnswer: Codable, Sendable, Equatable {
    public var applied: Bool
    public var task: TaskSnapshot

    public init(applied: Bool, task: TaskSnapshot) {
        self.applied = applied
        self.task = task
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case applied, task
    }
}

/// A runner of the registry (SPEC §8): `GET /v1/runners`, `GET /v1/runners/{name}`, drain and resume.
public struct RunnerItem: Codable, Sendable, Equatable {
    /// The header of a draining runner's `204` claim answer, `Runwarden-Drain: true` (SPEC §8).
    public static let drainHeader = "Runwarden-Drain"

    public var name: String
    public var labels: [String]
    public var status: RunnerStatus
    public var version: String?
    public var hostname: String?
    public var concurrency: Int?
    public var running: [String]
    public var firstSeenAt: String
    public var lastSeenAt: String
    public var draining: Bool

    public init(_ runner: Runner, now: Timestamp, leaseMilliseconds: Int64) {
        name = runner.name
        labels = runner.labels
        status = runner.status(now: now, leaseMilliseconds: leaseMilliseconds)
        version = runner.version
        hostname = runner.hostname
        concurrency = runner.concurrency
        running = runner.running
        firstSeenAt = runner.firstSeenAt.iso8601
        lastSeenAt = runner.lastSeenAt.iso8601
        draining = runner.draining
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case name, labels, status, version, hostname, concurrency, running
        case firstSeenAt = "first_seen_at"
        case lastSeenAt = "last_seen_at"
        case draining
    }
}

/// The body a webhook receives for a `runner.*` event (SPEC §8): the event, and no run.
public struct RunnerWebhookPayload: Codable, Sendable, Equatable {
    public var type: String
    public var eventID: String
    public var seq: Int64
    public var runSeq: Int?
    public var runID: String?
    public var taskID: String?
    public var runner: String
    public var status: String
    public var previousStatus: String?
    public var timestamp: String

    public init(_ event: Event) {
        let draft = event.draft
        type = draft.type
        eventID = draft.id
        seq = event.seq
        runSeq = nil
        runID = nil
        taskID = nil
        runner = draft.runner ?? ""
        status = draft.status
        previousStatus = draft.previousStatus
        timestamp = draft.timestamp.iso8601
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case type
        case eventID = "event_id"
        case seq
        case runSeq = "run_seq"
        case runID = "run_id"
        case taskID = "task_id"
        case runner, status
        case previousStatus = "previous_status"
        case timestamp
    }
}

/// A per-runner token as `POST /v1/runner-tokens` and `GET /v1/runner-tokens` show it (SPEC §8):
/// the secret `token` only in the create answer.
public struct RunnerTokenItem: Codable, Sendable, Equatable {
    public var id: String
    public var token: String?
    public var description: String
    public var runnerNames: [String]?
    public var labels: [String]?
    public var expiresAt: String?
    public var createdAt: String

    public init(_ token: RunnerToken, secret: String? = nil) {
        id = token.id
        self.token = secret
        description = token.description
        runnerNames = token.scope.runnerNames
        labels = token.scope.labels
        expiresAt = token.expiresAt?.iso8601
        createdAt = token.createdAt.iso8601
    }

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case id, token, description
        case runnerNames = "runner_names"
        case labels
        case expiresAt = "expires_at"
        case createdAt = "created_at"

        public static let omittedWhenNil: Set<String> = ["token"]
    }
}
