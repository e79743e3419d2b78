/// The JSON objects of SPEC §2 for runs and tasks: the server renders them (`Snapshot`), the
/// client decodes them, and the OpenAPI document is checked against their coding keys — so a
/// field is added here once. Timestamps are ISO 8601 text, as on the wire.
public struct RunSnapshot: Codable, Sendable, Equatable {
    public var id: String
    public var workflow: String
    public var status: RunStatus
    public var version: Int
    /// 1 for a first run; a re-run counts on from the run it repeats (SPEC §10).
    public var runAttempt: Int
    /// The run this one re-runs; null for a first run.
    public var rerunOf: String?
    /// The runs that re-run this one, oldest first. Always written (`[]` when none); optional
    /// so that a client still reads a server from before re-runs.
    public var reruns: [String]?
    public var createdAt: String
    public var updatedAt: String
    public var startedAt: String?
    public var finishedAt: String?
    public var durationMs: Int64?
    public var error: RunError?
    /// Claims take the highest priority first (SPEC §10). Always written; optional so that a
    /// client still reads a server from before priorities were shown.
    public var priority: Int?
    /// The run's concurrency key, its limit and what a newer run of it does (SPEC §10); null without one.
    public var concurrency: ConcurrencyWire?
    /// Why the run waits before any of its tasks can be claimed: a concurrency key whose slots
    /// other runs hold (SPEC §10); null otherwise.
    public var blockedBy: RunBlockedBy?
    public var progress: RunProgress
    /// Left out of run-list items (SPEC §2: "the snapshot without `tasks`").
    public var tasks: [TaskSnapshot]?
    public var outputRef: String?
    public var metadata: JSONValue?
    public var links: RunLinks
    /// Only in the answer to the create that generated it: shown once.
    public var callbackSecret: String?
    /// `true` once retention removed the run's events and deliveries (SPEC §7); absent before.
    public var compacted: Bool?

    public var isTerminal: Bool { status.isTerminal }

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case id, workflow, status, version
        case runAttempt = "run_attempt"
        case rerunOf = "rerun_of"
        case reruns
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case durationMs = "duration_ms"
        case error, priority, concurrency
        case blockedBy = "blocked_by"
        case progress, tasks
        case outputRef = "output_ref"
        case metadata, links
        case callbackSecret = "callback_secret"
        case compacted

        public static let omittedWhenNil: Set<String> = ["tasks", "callback_secret", "compacted"]
    }
}

/// Task counts per status, which add up to `total`; `percent` is terminal tasks × 100 / total.
public struct RunProgress: Codable, Sendable, Equatable {
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

    public init(counts: [TaskStatus: Int]) {
        let total = counts.values.reduce(0, +)
        let terminal = counts.filter { $0.key.isTerminal }.values.reduce(0, +)
        self.total = total
        pending = counts[.pending] ?? 0
        queued = counts[.queued] ?? 0
        dispatched = counts[.dispatched] ?? 0
        running = counts[.running] ?? 0
        canceling = counts[.canceling] ?? 0
        succeeded = counts[.succeeded] ?? 0
        failed = counts[.failed] ?? 0
        canceled = counts[.canceled] ?? 0
        timedOut = counts[.timedOut] ?? 0
        skipped = counts[.skipped] ?? 0
        percent = total == 0 ? 0 : terminal * 100 / total
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case total, pending, queued, dispatched, running, canceling, succeeded, failed, canceled
        case timedOut = "timed_out"
        case skipped, percent
    }
}

public struct RunLinks: Codable, Sendable, Equatable {
    public var selfLink: String
    public var events: String
    public var stream: String
    public var cancel: String

    public init(runID: String) {
        let base = "/v1/runs/" + runID
        selfLink = base
        events = base + "/events"
        stream = base + "/stream"
        cancel = base + "/cancel"
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case selfLink = "self"
        case events, stream, cancel
    }
}

/// A task as the run snapshot shows it; `GET /v1/tasks/{id}` and report answers add `run_id`.
public struct TaskSnapshot: Codable, Sendable, Equatable {
    public var id: String
    public var runID: String?
    public var name: String
    public var status: TaskStatus
    public var attempt: Int
    /// Claims take the highest priority first: the task's own, else its run's (SPEC §10).
    /// Always written; optional as the run's is.
    public var priority: Int?
    public var runner: String?
    public var workspace: String?
    /// The names of the tasks this one needs (all of them, met or not): the edges of the run's graph.
    /// Always written; optional so that a client still reads a server from before it.
    public var needs: [String]?
    public var startedAt: String?
    public var finishedAt: String?
    public var exitCode: Int?
    public var error: TaskError?
    public var heartbeatAt: String?
    public var blockedBy: BlockedBy?
    public var progress: TaskProgress?
    public var outputRef: String?
    /// The task of an earlier run whose result a re-run copied instead of running it again.
    public var reusedFrom: String?
    /// Only on an approval task: the decision, all null while it waits (SPEC §10).
    public var approval: ApprovalWire?

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case id
        case runID = "run_id"
        case name, status, attempt, priority, runner, workspace, needs
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case exitCode = "exit_code"
        case error
        case heartbeatAt = "heartbeat_at"
        case blockedBy = "blocked_by"
        case progress
        case outputRef = "output_ref"
        case reusedFrom = "reused_from"
        case approval

        public static let omittedWhenNil: Set<String> = ["run_id", "approval"]
    }
}

/// What a `pending` or `queued` task waits for: its unmet `needs`, or a workspace another task holds.
public struct BlockedBy: Codable, Sendable, Equatable {
    public var needs: [String]?
    public var workspace: String?
    public var heldBy: String?
    /// An approval task waiting for a person's decision (SPEC §10).
    public var approval: Bool?

    public static func needs(_ names: [String]) -> BlockedBy { BlockedBy(needs: names) }
    public static func workspace(_ name: String, heldBy holder: String) -> BlockedBy {
        BlockedBy(workspace: name, heldBy: holder)
    }

    public static let awaitingApproval = BlockedBy(approval: true)

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case needs, workspace
        case heldBy = "held_by"
        case approval

        public static let omittedWhenNil: Set<String> = ["needs", "workspace", "held_by", "approval"]
    }
}

/// What a run waits for before any of its tasks can be claimed (SPEC §10): a slot of its
/// concurrency key, held by the runs named in `held_by`, oldest first.
public struct RunBlockedBy: Codable, Sendable, Equatable {
    public var concurrency: String
    public var heldBy: [String]

    public init(concurrency: String, heldBy: [String]) {
        self.concurrency = concurrency
        self.heldBy = heldBy
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case concurrency
        case heldBy = "held_by"
    }
}

/// A run's `concurrency` as the snapshot shows it (SPEC §10).
public struct ConcurrencyWire: Codable, Sendable, Equatable {
    public var key: String
    public var limit: Int
    public var onConflict: ConcurrencyConflict

    public init(_ spec: ConcurrencySpec) {
        key = spec.key
        limit = spec.limit
        onConflict = spec.onConflict
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case key, limit
        case onConflict = "on_conflict"
    }
}

/// `GET /v1/runs`: newest first, `next_cursor` null on the last page.
public struct RunList: Codable, Sendable, Equatable {
    public var items: [RunSnapshot]
    public var nextCursor: String?

    public init(items: [RunSnapshot], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case items
        case nextCursor = "next_cursor"
    }
}

/// An approval task's decision as tasks and events show it: who approved or rejected it (the
/// token kind), their comment and when. All null while the task waits.
public struct ApprovalWire: Codable, Sendable, Equatable {
    public var approvedBy: String?
    public var rejectedBy: String?
    public var comment: String?
    public var decidedAt: String?

    public init(_ decision: ApprovalDecision?) {
        approvedBy = decision.flatMap { $0.approved ? $0.by : nil }
        rejectedBy = decision.flatMap { $0.approved ? nil : $0.by }
        comment = decision?.comment
        decidedAt = decision?.at.iso8601
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case approvedBy = "approved_by"
        case rejectedBy = "rejected_by"
        case comment
        case decidedAt = "decided_at"
    }
}
