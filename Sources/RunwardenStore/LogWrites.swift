import Foundation
import RunwardenCore

/// The writes of one append, worked out alike for every backend: the new bytes split at the
/// cap's head limit (the head is kept for good, the rest is the tail), and the bookkeeping of
/// what trimming the tail drops. A backend gets it from `plan`, stores the `pieces`, deletes or
/// shortens its oldest tail chunk while there is an `excess` (reporting each with `dropped`),
/// and saves `log` when `changesLog`.
public struct LogWrites: Sendable {
    public private(set) var log: TaskLog
    public private(set) var stored = 0
    public private(set) var droppedNow: Int64 = 0
    let chunk: LogChunk
    let cap: LogCap

    /// The new bytes to insert, at their offsets: a head piece and a tail piece, at most.
    public private(set) var pieces: [(start: Int64, bytes: ArraySlice<UInt8>)] = []
    /// Whether the log's row changes (new bytes, or a chunk sent again that makes it final).
    public private(set) var changesLog = false

    init(chunk: LogChunk, log: TaskLog, cap: LogCap) {
        self.chunk = chunk
        self.log = log
        self.cap = cap
    }

    /// What appending `chunk` to the attempt's log (`existing`, nil when nothing arrived yet)
    /// does, by the rules of `LogAppend`; throws what a refused chunk answers. Both backends
    /// run only its statements.
    public static func plan(_ chunk: LogChunk, task: RunTask, existing: TaskLog?, cap: LogCap, now: Timestamp) throws -> LogWrites {
        try LogAppend.check(task: task, attempt: chunk.attempt, runner: chunk.runner, log: existing)
        if existing?.expiredAt != nil { throw LogAppend.expired(taskID: task.id, attempt: chunk.attempt) }
        let log = existing ?? TaskLog(taskID: task.id, attempt: chunk.attempt, runID: task.runID, runner: chunk.runner, updatedAt: now)
        var writes = LogWrites(chunk: chunk, log: log, cap: cap)
        switch LogAppend.plan(offset: chunk.offset, count: chunk.bytes.count, log: log) {
        case .mismatch(let expected):
            throw LogAppend.mismatch(expected: expected, chunkOffset: chunk.offset, final: log.final)
        case .acknowledged:
            writes.changesLog = writes.marksFinal()
        case .append(let skipping):
            writes.pieces = writes.pieces(skipping: skipping)
            writes.changesLog = true
        }
        if writes.changesLog { writes.log.updatedAt = now }
        return writes
    }

    /// What the append did, once the backend ran it.
    public var appended: LogAppended { LogAppended(log: log, stored: stored, dropped: droppedNow) }

    /// A chunk stored already (or empty) that says the output is complete: marks the log final.
    /// False when there is nothing to write.
    private mutating func marksFinal() -> Bool {
        guard chunk.final, !log.final, chunk.offset &+ Int64(chunk.bytes.count) == log.received else { return false }
        log.final = true
        return true
    }

    /// Where the chunk's bytes from `skipping` on go: a head piece and a tail piece, at most.
    private mutating func pieces(skipping: Int) -> [(start: Int64, bytes: ArraySlice<UInt8>)] {
        var bytes = chunk.bytes[skipping...]
        var position = log.received
        var pieces: [(start: Int64, bytes: ArraySlice<UInt8>)] = []
        if position < cap.headLimit {
            let headCount = Int(min(Int64(bytes.count), cap.headLimit - position))
            pieces.append((position, bytes.prefix(headCount)))
            bytes = bytes.dropFirst(headCount)
            position += Int64(headCount)
        }
        if !bytes.isEmpty {
            pieces.append((position, bytes))
            log.tailStored += Int64(bytes.count)
            position += Int64(bytes.count)
        }
        stored = chunk.bytes.count - skipping
        log.received = position
        log.final = chunk.final
        return pieces
    }

    /// How many of the oldest tail bytes must go to keep within the cap; nil when none.
    public var excess: Int64? { log.tailStored > cap.tailLimit ? log.tailStored - cap.tailLimit : nil }

    /// `count` of the oldest tail bytes were deleted.
    public mutating func dropped(_ count: Int64) {
        log.tailStored = max(0, log.tailStored - count)
        log.truncated += count
        droppedNow += count
    }
}

/// One stored chunk, as a read meets it.
public struct LogBytes {
    public let start: Int64
    public let data: [UInt8]

    public init(start: Int64, data: [UInt8]) {
        self.start = start
        self.data = data
    }

    public init(start: Int64, data: Data) { self.init(start: start, data: [UInt8](data)) }

    /// Adds what this chunk holds at or after `offset` to `slice`, up to `limit` bytes in all.
    /// False when the chunk does not continue the bytes taken so far (the dropped middle lies
    /// between): a read stops there, and the next one starts past the gap.
    public func append(to slice: inout LogSlice, from offset: Int64, limit: Int) -> Bool {
        let end = start + Int64(data.count)
        if end <= offset { return true }
        if slice.bytes.isEmpty {
            slice.start = max(offset, start)
        } else if start != slice.end {
            return false
        }
        let from = Int(slice.start > start && slice.bytes.isEmpty ? slice.start - start : 0)
        let take = min(data.count - from, limit - slice.bytes.count)
        if take > 0 { slice.bytes += data[from..<(from + take)] }
        return true
    }
}
