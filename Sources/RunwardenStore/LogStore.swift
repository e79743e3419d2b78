import RunwardenCore

/// Task output kept per attempt, in chunks at byte offsets (SPEC §9; rules in `LogAppend`).
public protocol LogStore: Sendable {
    /// Appends `chunk` in one transaction: checks who may write it (`LogAppend.check`), stores
    /// the new bytes, drops the oldest bytes past the head beyond `cap`. Nil when the task does
    /// not exist. Throws `TransitionError.taskNotClaimed`, or `RunwardenError` with
    /// `log_offset_mismatch` or `logs_expired`.
    func appendLog(_ chunk: LogChunk, cap: LogCap, now: Timestamp) async throws -> LogAppended?

    /// Up to `limit` stored bytes of an attempt (its latest when `attempt` is nil) from `offset`
    /// on — from the first kept byte after it when `offset` fell in the dropped middle. Nil when
    /// the task does not exist.
    func readLog(taskID: String, attempt: Int?, offset: Int64, limit: Int) async throws -> LogSlice?

    /// Removes the bytes of up to `limit` logs not written since `cutoff`, keeping their records
    /// (`expiredAt`) so reading them answers `410 logs_expired`. Returns how many.
    func expireLogs(updatedBefore cutoff: Timestamp, limit: Int, now: Timestamp) async throws -> Int
}

/// One upload of a runner: bytes of an attempt's log from `offset` on.
public struct LogChunk: Sendable {
    public var taskID: String
    public var attempt: Int
    public var runner: String?
    public var offset: Int64
    public var bytes: [UInt8]
    /// No output follows this chunk.
    public var final: Bool

    public init(taskID: String, attempt: Int, runner: String?, offset: Int64, bytes: [UInt8], final: Bool) {
        self.taskID = taskID
        self.attempt = attempt
        self.runner = runner
        self.offset = offset
        self.bytes = bytes
        self.final = final
    }
}

/// What an append did.
public struct LogAppended: Sendable, Equatable {
    public var log: TaskLog
    /// New bytes stored (0 when the chunk was stored already).
    public var stored: Int
    /// Bytes this append dropped from the middle to keep within the cap.
    public var dropped: Int64

    public init(log: TaskLog, stored: Int, dropped: Int64) {
        self.log = log
        self.stored = stored
        self.dropped = dropped
    }
}

/// Bytes of one attempt's log and what a reader needs to know around them.
public struct LogSlice: Sendable {
    /// The task as it stands (its attempt and status decide whether the log is complete).
    public var task: RunTask
    public var attempt: Int
    /// Nil when nothing of the attempt arrived yet.
    public var log: TaskLog?
    /// Where `bytes` start: `offset`, or past it when the bytes there were dropped.
    public var start: Int64
    public var bytes: [UInt8]

    public init(task: RunTask, attempt: Int, log: TaskLog?, start: Int64, bytes: [UInt8]) {
        self.task = task
        self.attempt = attempt
        self.log = log
        self.start = start
        self.bytes = bytes
    }

    public var end: Int64 { start + Int64(bytes.count) }
}

extension LogAppend {
    /// The error a refused append answers.
    public static func mismatch(expected: Int64, chunkOffset: Int64, final: Bool) -> RunwardenError {
        let why = final ? "the log is complete at \(expected) bytes" : "the stored log ends at \(expected)"
        return RunwardenError(
            .logOffsetMismatch, "a chunk at offset \(chunkOffset) does not continue the log: \(why)",
            details: [mismatchDetail(expected: expected)])
    }

    public static func expired(taskID: String, attempt: Int) -> RunwardenError {
        RunwardenError(.logsExpired, "the log of attempt \(attempt) of task \(taskID) was removed by log retention")
    }
}
