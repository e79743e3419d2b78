/// Run statuses (SPEC §1). `canceling` is active; the last four are terminal and absorbing.
public enum RunStatus: String, Sendable, Codable, CaseIterable {
    case queued, running, canceling, succeeded, failed, canceled
    case timedOut = "timed_out"

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .canceled, .timedOut: true
        case .queued, .running, .canceling: false
        }
    }
}

/// Task statuses (SPEC §1), in their forward order; every terminal status ranks last.
public enum TaskStatus: String, Sendable, Codable, CaseIterable {
    case pending, queued, dispatched, running, canceling, succeeded, failed, canceled
    case timedOut = "timed_out"
    case skipped

    public var isTerminal: Bool { rank == Self.terminalRank }

    /// Claimed by a runner and not yet finished: the runner owns a process for it.
    public var isActive: Bool { self == .dispatched || self == .running || self == .canceling }

    /// Forward order: a report may only move a task to a higher rank.
    public var rank: Int {
        switch self {
        case .pending: 0
        case .queued: 1
        case .dispatched: 2
        case .running: 3
        case .canceling: 4
        case .succeeded, .failed, .canceled, .timedOut, .skipped: Self.terminalRank
        }
    }

    private static let terminalRank = 5

    /// Statuses a runner may report in `POST /v1/tasks/{id}/status`.
    public static let reportable: [TaskStatus] = [.running, .succeeded, .failed, .canceled, .timedOut]
}
