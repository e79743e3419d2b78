/// One attempt's output as the server keeps it (SPEC §9): the bytes a runner shipped, at byte
/// offsets of the attempt's log file, capped at `--log-max-bytes` by keeping the head and the
/// newest bytes and counting what was dropped from the middle.
public struct TaskLog: Sendable, Equatable {
    public var taskID: String
    public var attempt: Int
    public var runID: String
    /// The runner that shipped the first chunk; later chunks must come from it.
    public var runner: String?
    /// The offset the next chunk must start at: every byte before it arrived.
    public var received: Int64 = 0
    /// Bytes kept past the head (the newest ones).
    public var tailStored: Int64 = 0
    /// Bytes dropped from the middle to stay within the cap.
    public var truncated: Int64 = 0
    /// The runner said no more output follows: the process ended and everything was shipped.
    public var final = false
    public var updatedAt: Timestamp
    /// When `--log-retention` removed the bytes (the record stays, to answer `410`).
    public var expiredAt: Timestamp?

    public init(taskID: String, attempt: Int, runID: String, runner: String?, updatedAt: Timestamp) {
        self.taskID = taskID
        self.attempt = attempt
        self.runID = runID
        self.runner = runner
        self.updatedAt = updatedAt
    }

    /// Bytes kept in all.
    public func stored(cap: LogCap) -> Int64 { min(received, cap.headLimit) + tailStored }
}

/// `--log-max-bytes` split the way it is kept: the first half from the start of the output, the
/// rest for its newest bytes.
public struct LogCap: Sendable, Equatable {
    public let maxBytes: Int64
    public var headLimit: Int64 { maxBytes / 2 }
    public var tailLimit: Int64 { maxBytes - headLimit }

    public static let defaultMaxBytes: Int64 = 16 << 20

    public init(maxBytes: Int64) { self.maxBytes = max(2, maxBytes) }
}

/// What an arriving chunk does to a log (SPEC §9).
public enum LogAppend: Sendable, Equatable {
    /// Stored already (a chunk sent again): acknowledged, nothing written.
    case acknowledged
    /// New bytes: the chunk's bytes from `skipping` on, stored at the log's end.
    case append(skipping: Int)
    /// The chunk starts past the log's end (a gap), or adds to a log that is final.
    case mismatch(expected: Int64)

    public static func plan(offset: Int64, count: Int, log: TaskLog) -> LogAppend {
        guard offset <= log.received else { return .mismatch(expected: log.received) }
        let (end, overflow) = offset.addingReportingOverflow(Int64(count))
        if overflow { return .mismatch(expected: log.received) }
        if end <= log.received { return .acknowledged }
        if log.final { return .mismatch(expected: log.received) }
        return .append(skipping: Int(log.received - offset))
    }

    /// The `details` entry of a `log_offset_mismatch`: where the next chunk must start.
    public static func mismatchDetail(expected: Int64) -> FieldError { FieldError("offset", "expected \(expected)") }

    /// The offset a `log_offset_mismatch`'s `details` asks for; nil when they name none.
    public static func expectedOffset(in details: [FieldError]) -> Int64? {
        details.lazy.filter { $0.field == "offset" && $0.message.hasPrefix("expected ") }
            .compactMap { Int64($0.message.dropFirst("expected ".count)) }.first.flatMap { $0 >= 0 ? $0 : nil }
    }

    /// Whether `runner` may ship output of `attempt` of `task`: an attempt that was handed out
    /// (the current one once claimed, or an earlier one), by the runner that holds or held it.
    public static func check(task: RunTask, attempt: Int, runner: String?, log: TaskLog?) throws(TransitionError) {
        let current = task.state.attempt
        guard attempt >= 1, attempt <= current else {
            throw .taskNotClaimed("attempt \(attempt) of task \(task.id) was never handed out (current attempt: \(current))")
        }
        if attempt == current {
            guard let holder = task.state.runner, task.status != .pending, task.status != .queued else {
                throw .taskNotClaimed("attempt \(attempt) of task \(task.id) is not claimed")
            }
            if let runner, runner != holder {
                throw .taskNotClaimed("attempt \(attempt) of task \(task.id) is claimed by another runner")
            }
        }
        if let runner, let writer = log?.runner, writer != runner {
            throw .taskNotClaimed("the log of attempt \(attempt) of task \(task.id) comes from another runner")
        }
    }

    /// Whether all of the attempt's output has arrived: the runner said so, or the attempt
    /// ended and nothing came for a whole lease after (its runner is gone).
    public static func isComplete(_ log: TaskLog?, task: RunTask, attempt: Int, now: Timestamp, leaseSeconds: Int) -> Bool {
        if log?.final == true { return true }
        let endedAt: Timestamp?
        if attempt < task.state.attempt {
            endedAt = attempt == task.state.attempt - 1 ? task.state.queuedAt : Timestamp(milliseconds: 0)
        } else {
            endedAt = task.status.isTerminal ? task.state.finishedAt ?? Timestamp(milliseconds: 0) : nil
        }
        guard let endedAt else { return false }
        let quietSince = max(endedAt, log?.updatedAt ?? endedAt)
        return quietSince.adding(seconds: leaseSeconds) <= now
    }
}
