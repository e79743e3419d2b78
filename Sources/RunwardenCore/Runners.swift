/// The runner registry's rules (SPEC §8): what a runner's status is, when it changes, and the
/// `runner.*` event each change appends. Pure: the stores call these inside their transactions.

/// `online`: contact within the lease. `lost`: no contact for a lease while it held tasks.
/// `offline`: it said goodbye, or no contact for a lease while it held none.
public enum RunnerStatus: String, Sendable, Codable, CaseIterable {
    case online, lost, offline
}

/// A runner as the store keeps it. `recordedStatus` is the status its last `runner.*` event
/// announced; what the API shows is `status(now:lease:)`, which also knows that a runner not heard
/// from for a lease is gone before the reaper has recorded (and announced) it.
public struct Runner: Sendable, Equatable {
    public var name: String
    public var labels: [String]
    public var version: String?
    public var hostname: String?
    public var concurrency: Int?
    public var firstSeenAt: Timestamp
    public var lastSeenAt: Timestamp
    public var draining: Bool
    public var recordedStatus: RunnerStatus
    /// Its active tasks (`dispatched`, `running`, `canceling`), oldest id first.
    public var running: [String]

    public init(
        name: String, labels: [String], version: String?, hostname: String?, concurrency: Int?, firstSeenAt: Timestamp,
        lastSeenAt: Timestamp, draining: Bool, recordedStatus: RunnerStatus, running: [String]
    ) {
        self.name = name
        self.labels = labels
        self.version = version
        self.hostname = hostname
        self.concurrency = concurrency
        self.firstSeenAt = firstSeenAt
        self.lastSeenAt = lastSeenAt
        self.draining = draining
        self.recordedStatus = recordedStatus
        self.running = running
    }

    /// The status as of `now` (SPEC §8).
    public func status(now: Timestamp, leaseMilliseconds: Int64) -> RunnerStatus {
        guard recordedStatus == .online, RunnerRules.isSilent(lastSeenAt: lastSeenAt, now: now, leaseMilliseconds: leaseMilliseconds)
        else { return recordedStatus }
        return RunnerRules.goneStatus(holdsTasks: !running.isEmpty)
    }
}

/// What a claim or a heartbeat tells about its runner. Every field but the name is optional: a
/// runner of an earlier release sends none, and a heartbeat carries no labels (nil keeps what
/// the runner's claims said).
public struct RunnerContact: Sendable, Equatable {
    public var name: String
    public var labels: [String]?
    public var version: String?
    public var hostname: String?
    public var concurrency: Int?

    public init(name: String, labels: [String]? = nil, version: String? = nil, hostname: String? = nil, concurrency: Int? = nil) {
        self.name = name
        self.labels = labels
        self.version = version
        self.hostname = hostname
        self.concurrency = concurrency
    }

    /// The body fields that describe the runner (SPEC §8); the route lists them among its allowed keys.
    public static let fields: Set<String> = ["version", "hostname", "concurrency"]

    /// Reads `version`, `hostname` and `concurrency` from a claim or heartbeat body.
    public mutating func read(_ body: JSONValue, with reader: inout FieldReader) {
        version = reader.string(body, "version", at: "", maxLength: 100)
        hostname = reader.string(body, "hostname", at: "", maxLength: 255)
        concurrency = reader.integer(body, "concurrency", at: "", minimum: 1, maximum: 100_000)
    }
}

public enum RunnerRules {
    /// No contact for a whole lease. Saturating: a stored timestamp is never trusted to be sane.
    public static func isSilent(lastSeenAt: Timestamp, now: Timestamp, leaseMilliseconds: Int64) -> Bool {
        lastSeenAt < now.adding(saturatingMilliseconds: -leaseMilliseconds)
    }

    /// What a silent runner becomes: `lost` when it still held tasks, else `offline`.
    public static func goneStatus(holdsTasks: Bool) -> RunnerStatus { holdsTasks ? .lost : .offline }

    /// The `runner.<status>` event of a change of the recorded status; nil when it does not change.
    /// `previous` is nil for a runner seen for the first time.
    public static func event(runner: String, from previous: RunnerStatus?, to status: RunnerStatus, id: String, now: Timestamp)
        -> EventDraft?
    {
        guard previous != status else { return nil }
        return EventDraft(
            id: id, runID: nil, taskID: nil, type: EventType.runner(status), status: status.rawValue,
            previousStatus: previous?.rawValue, timestamp: now, attempt: nil, error: nil, runner: runner)
    }
}
