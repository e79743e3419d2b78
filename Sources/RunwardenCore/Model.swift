/// What a task runs: an argv array, or a shell string handed out as `/bin/sh -c`.
public enum TaskCommand: Sendable, Equatable, Codable {
    case argv([String])
    case shell(String)

    public var argv: [String] {
        switch self {
        case .argv(let argv): argv
        case .shell(let script): ["/bin/sh", "-c", script]
        }
    }

    // Pinned: these keys are in every stored `spec` column (see StoredFormatTests).
    enum CodingKeys: String, CodingKey { case argv, shell }
    enum ArgvCodingKeys: String, CodingKey { case _0 }
    enum ShellCodingKeys: String, CodingKey { case _0 }
}

/// A task as the client defined it; never changes after the run is created.
public struct TaskSpec: Sendable, Equatable, Codable {
    public var name: String
    public var command: TaskCommand
    public var env: [String: String]
    public var workspace: String?
    public var needs: [String]
    public var timeoutSeconds: Int?
    public var retries: Int
    public var allowFailure: Bool
    public var labels: [String]
    /// Environment values passed to the process like `env`, and never shown again: not in any
    /// answer but the claim, masked as `***` in stored logs (SPEC §9). Nil when there are none.
    public var secretEnv: [String: String]?
    /// An approval task (SPEC §10): never claimed, it waits `queued` for a person's approve or
    /// reject. Its `command` is empty: it runs nothing.
    public var approval: ApprovalSpec?
    /// Claims take the highest priority first (SPEC §10, −100…100); the run's when the task
    /// names none (filled in when the body is read), 0 in rows written before priorities.
    public var priority: Int?

    public init(
        name: String, command: TaskCommand, env: [String: String] = [:], workspace: String? = nil,
        needs: [String] = [], timeoutSeconds: Int? = nil, retries: Int = 0, allowFailure: Bool = false,
        labels: [String] = [], secretEnv: [String: String]? = nil, approval: ApprovalSpec? = nil, priority: Int? = nil
    ) {
        self.secretEnv = secretEnv
        self.approval = approval
        self.priority = priority
        self.name = name
        self.command = command
        self.env = env
        self.workspace = workspace
        self.needs = needs
        self.timeoutSeconds = timeoutSeconds
        self.retries = retries
        self.allowFailure = allowFailure
        self.labels = labels
    }

    // Pinned: the stored `spec` column's keys, whatever the properties are called.
    enum CodingKeys: String, CodingKey {
        case name, command, env, workspace, needs, timeoutSeconds, retries, allowFailure, labels, secretEnv, approval, priority
    }

    /// The priority a claim orders by.
    public var claimPriority: Int { priority ?? 0 }
}

/// Reported progress of a task, e.g. 3 of 10 steps.
public struct TaskProgress: Sendable, Equatable, Codable {
    public var done: Int
    public var total: Int
    public init(done: Int, total: Int) {
        self.done = done
        self.total = total
    }

    public enum CodingKeys: String, CodingKey, CaseIterable { case done, total }
}

/// The task error codes the server sets or knows (SPEC §2); a runner may report others, which
/// are kept as given — so `TaskError.code` is text, and these are its known values.
public enum TaskErrorCode: String, Sendable, CaseIterable {
    case exitCode = "exit_code"
    case timeout
    case launchFailed = "launch_failed"
    case heartbeatLost = "heartbeat_lost"
    case canceled
    /// A needed task ended without success, so this one was skipped (SPEC §1).
    case needsNotMet = "needs_not_met"
    /// A person rejected an approval task (SPEC §10).
    case rejected

    /// Retryable codes: the same task may well succeed on another attempt or host.
    public static func isRetryable(_ code: String) -> Bool {
        code == launchFailed.rawValue || code == heartbeatLost.rawValue
    }
}

/// A task's error, stored in its `state` column and shown in snapshots and events as is.
public struct TaskError: Sendable, Equatable, Codable {
    public var code: String
    public var message: String
    public var retryable: Bool

    public init(code: String, message: String, retryable: Bool? = nil) {
        self.code = code
        self.message = message
        self.retryable = retryable ?? TaskErrorCode.isRetryable(code)
    }

    public init(_ code: TaskErrorCode, _ message: String) { self.init(code: code.rawValue, message: message) }

    public enum CodingKeys: String, CodingKey, CaseIterable { case code, message, retryable }
}

/// A run's error: `task_failed` with the failing task's error as `cause`, or `run_timeout`.
/// An event's `error` has this shape too: a task's error is one without `task_id` and `cause`.
public struct RunError: Sendable, Equatable, Codable {
    public var code: String
    public var message: String
    public var taskID: String?
    public var retryable: Bool
    public var cause: TaskError?

    public static let taskFailed = "task_failed"
    public static let runTimeout = "run_timeout"

    public init(code: String, message: String, taskID: String? = nil, retryable: Bool, cause: TaskError? = nil) {
        self.code = code
        self.message = message
        self.taskID = taskID
        self.retryable = retryable
        self.cause = cause
    }

    /// A task's error as an event carries it.
    public init(_ task: TaskError) { self.init(code: task.code, message: task.message, retryable: task.retryable) }

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case code, message
        case taskID = "task_id"
        case retryable, cause

        public static let omittedWhenNil: Set<String> = ["task_id", "cause"]
    }

    /// Rows written before the keys were pinned (schema v8 and older) spell `task_id` `taskID`.
    private enum LegacyKeys: String, CodingKey { case taskID }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        code = try container.decode(String.self, forKey: .code)
        message = try container.decode(String.self, forKey: .message)
        retryable = try container.decode(Bool.self, forKey: .retryable)
        cause = try container.decodeIfPresent(TaskError.self, forKey: .cause)
        taskID = try container.decodeIfPresent(String.self, forKey: .taskID)
            ?? decoder.container(keyedBy: LegacyKeys.self).decodeIfPresent(String.self, forKey: .taskID)
    }
}

/// A task's changing state. `heartbeatAt` is kept apart from the rest by the store, because a
/// heartbeat refreshes it without being a change of the run (no version step, no event).
public struct TaskState: Sendable, Equatable, Codable {
    public var status: TaskStatus = .pending
    public var attempt = 1
    public var runner: String?
    public var queuedAt: Timestamp?
    public var claimedAt: Timestamp?
    public var startedAt: Timestamp?
    public var finishedAt: Timestamp?
    public var exitCode: Int?
    public var error: TaskError?
    public var progress: TaskProgress?
    public var outputRef: String?
    /// When `outputRef` was last reported: the run's `output_ref` comes from the latest one.
    public var outputRefAt: Timestamp?
    /// True while this task holds the exclusive lock on its workspace.
    public var holdsLock = false
    public var heartbeatAt: Timestamp?
    /// The runner's own id for the claim request that took this attempt: a runner that lost
    /// the answer asks again with the same id and gets the same task back instead of a new one.
    public var claimID: String?
    /// While `pending`: how many of its needs are not met yet. A need that is met counts it
    /// down, and at 0 the task is queued — without looking at the other needs. Nil in rows
    /// written before it was kept: a change that needs it then loads the whole run and counts.
    public var needsLeft: Int?
    /// A task a re-run did not run again: the id of the task of the earlier run whose result
    /// (runner, timestamps, exit code, `output_ref`) it carries (SPEC §10).
    public var reusedFrom: String?
    /// An approval task's decision: who approved or rejected it, when, and their comment.
    public var approval: ApprovalDecision?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case status, attempt, runner, queuedAt, claimedAt, startedAt, finishedAt, exitCode, error, progress
        case outputRef, outputRefAt, holdsLock, claimID, needsLeft, reusedFrom, approval
    }
}

public struct RunTask: Sendable, Equatable, Identifiable {
    public let id: String
    public let runID: String
    public let spec: TaskSpec
    public var state: TaskState
    /// The ids of the tasks of this run that need this one (its reverse `needs` edges, in run
    /// order): when it ends, only these are looked at.
    public let dependents: [String]

    public init(id: String, runID: String, spec: TaskSpec, state: TaskState, dependents: [String] = []) {
        self.id = id
        self.runID = runID
        self.spec = spec
        self.state = state
        self.dependents = dependents
    }

    public var name: String { spec.name }
    public var status: TaskStatus { state.status }
}

/// A run as the client defined it.
public struct RunSpec: Sendable, Equatable, Codable {
    public var workflow: String
    public var timeoutSeconds: Int?
    public var callbackURL: String?
    public var callbackSecret: String?
    public var metadata: JSONValue?
    /// The run this one re-runs (SPEC §10); nil for a first run.
    public var rerunOf: String?
    /// 1 for a first run (nil in rows written before re-runs existed); a re-run's is its
    /// earlier run's + 1.
    public var runAttempt: Int?
    /// The run's priority (SPEC §10); its tasks inherit it.
    public var priority: Int?
    /// The trace the run's spans join (SPEC §11); nil when the server that took it did not trace.
    public var trace: RunTrace?
    /// The run's concurrency key (SPEC §10); nil for a run without one.
    public var concurrency: ConcurrencySpec?

    public init(
        workflow: String, timeoutSeconds: Int? = nil, callbackURL: String? = nil, callbackSecret: String? = nil,
        metadata: JSONValue? = nil, rerunOf: String? = nil, runAttempt: Int? = nil, priority: Int? = nil,
        trace: RunTrace? = nil, concurrency: ConcurrencySpec? = nil
    ) {
        self.trace = trace
        self.priority = priority
        self.concurrency = concurrency
        self.workflow = workflow
        self.timeoutSeconds = timeoutSeconds
        self.callbackURL = callbackURL
        self.callbackSecret = callbackSecret
        self.metadata = metadata
        self.rerunOf = rerunOf
        self.runAttempt = runAttempt
    }

    // Pinned: the stored `spec` column's keys.
    enum CodingKeys: String, CodingKey {
        case workflow, timeoutSeconds, callbackURL, callbackSecret, metadata, rerunOf, runAttempt, priority, trace, concurrency
    }
}

public struct RunState: Sendable, Equatable, Codable {
    public var status: RunStatus = .queued
    public var version = 1
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var startedAt: Timestamp?
    public var finishedAt: Timestamp?
    public var error: RunError?
    public var outputRef: String?
    /// The last `run_seq` handed out; the store numbers new events from here.
    public var lastRunSeq = 0
    /// Its tasks by status, kept as each change commits. Nil in rows written before they were
    /// kept: the next change of such a run loads all its tasks and counts them.
    public var taskCounts: TaskCounts?
    /// When retention removed the run's events, deliveries and idempotency keys (SPEC §7).
    public var compactedAt: Timestamp?
    /// The runs that re-run this one, oldest first (SPEC §10); nil until the first.
    public var reruns: [String]?
    /// Where the run stands in its concurrency key's line (SPEC §10); nil without a key.
    public var concurrencySlot: ConcurrencySlot?

    public init(createdAt: Timestamp) {
        self.createdAt = createdAt
        self.updatedAt = createdAt
    }

    // Pinned: the stored `state` column's keys.
    enum CodingKeys: String, CodingKey {
        case status, version, createdAt, updatedAt, startedAt, finishedAt, error, outputRef, lastRunSeq, taskCounts, compactedAt
        case reruns, concurrencySlot
    }
}

/// A run with its tasks: all of them as the store reads a run, or only those a `RunChange`
/// loaded (see `RunChange.hasWholeRun`).
public struct Run: Sendable, Equatable, Identifiable {
    public let id: String
    public let spec: RunSpec
    public var state: RunState
    public var tasks: [RunTask]

    public init(id: String, spec: RunSpec, state: RunState, tasks: [RunTask]) {
        self.id = id
        self.spec = spec
        self.state = state
        self.tasks = tasks
    }

    public var status: RunStatus { state.status }

    public func taskIndex(id: String) -> Int? { tasks.firstIndex { $0.id == id } }
    public func taskIndex(name: String) -> Int? { tasks.firstIndex { $0.name == name } }

    /// Task positions by name, for code that looks up many needs at once (a lookup per need
    /// through `taskIndex(name:)` would be quadratic on a run of thousands of tasks).
    public var taskIndexByName: [String: Int] {
        Dictionary(tasks.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
