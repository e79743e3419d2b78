import RunwardenCore
import RunwardenStore

/// Task logs (SPEC §9): runners append chunks, clients read, long-poll and stream them.
extension RunService {
    /// Stores a chunk of an attempt's output and wakes its readers.
    public func appendLog(_ chunk: LogChunk) async throws -> LogAppended {
        let appended = try await timed("append_log") { try await store.appendLog(chunk, cap: logCap, now: clock()) }
        guard let appended else { throw RunwardenError.notFound(.task, chunk.taskID) }
        metrics.recordLog(received: chunk.bytes.count, stored: appended.stored, truncated: appended.dropped)
        if appended.stored > 0 || appended.log.final { await hub.notify([.log(chunk.taskID)]) }
        return appended
    }

    /// What a reader gets: bytes from `offset` (its latest attempt when `attempt` is nil), and
    /// whether the attempt's output is complete.
    public struct LogRead: Sendable {
        public var slice: LogSlice
        public var complete: Bool
    }

    /// Up to `limit` bytes from `offset`; with `wait`, long-polls until there are some or the
    /// output is complete. `asText`: bytes that are only the start of a character cut off at the
    /// end (`LogText.answerable`) are not worth answering yet — the wait goes on for the rest.
    public func log(
        taskID: String, attempt: Int?, offset: Int64, limit: Int, wait: Duration, asText: Bool = false
    ) async throws -> LogRead {
        let deadline = ContinuousClock.now + wait
        while true {
            let generation = await hub.generation(of: .log(taskID))
            let slice = try await timed("read_log") {
                try await store.readLog(taskID: taskID, attempt: attempt, offset: offset, limit: limit)
            }
            guard let slice else { throw RunwardenError.notFound(.task, taskID) }
            let complete = LogAppend.isComplete(
                slice.log, task: slice.task, attempt: slice.attempt, now: clock(), leaseSeconds: leaseSeconds)
            // Complete only once every byte was read: a reader stops at `Log-Complete: true`.
            let read = LogRead(slice: slice, complete: complete && slice.end >= (slice.log?.received ?? 0))
            let remaining = deadline - .now
            let news = asText ? LogText.answerable(slice.bytes, isLast: read.complete) > 0 : !slice.bytes.isEmpty
            if news || read.complete || remaining <= .zero || Self.waitIsOver { return read }
            // A log that completes by silence (its runner is gone) is looked at again within a second.
            await hub.wait(for: .log(taskID), after: generation, timeout: min(remaining, .seconds(1)))
        }
    }

    /// Removes the bytes of logs older than `retention`, a batch at a time.
    func expireLogs(olderThan retention: Duration, limit: Int) async throws -> Int {
        let now = clock()
        let cutoff = now.adding(saturatingMilliseconds: -retention.saturatingMilliseconds)
        return try await timed("expire_logs") { try await store.expireLogs(updatedBefore: cutoff, limit: limit, now: now) }
    }
}
