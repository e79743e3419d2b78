import Foundation
import NIOCore
import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Task logs (`LogStore`): one `task_logs` row per attempt, its bytes in `log_chunks`. Appends
/// to one attempt's log take its row lock, so a chunk sent twice at once is stored once.
extension PostgresRunStore {
    public func appendLog(_ chunk: LogChunk, cap: LogCap, now: Timestamp) async throws -> LogAppended? {
        try await transaction(.write) { tx in
            guard let task = try await Self.loadTask(tx, id: chunk.taskID) else { return nil }
            try await tx.execute(
                """
                INSERT INTO task_logs (task_id, attempt, run_id, runner, received, tail_stored, truncated, final, updated_at)
                VALUES (\(task.id), \(chunk.attempt), \(task.runID), \(chunk.runner), 0, 0, 0, false, \(now.milliseconds))
                ON CONFLICT (task_id, attempt) DO NOTHING
                """)
            // The row just made (or found) is locked: a chunk sent twice at once is stored once.
            let existing = try await Self.loadLog(tx, taskID: task.id, attempt: chunk.attempt, forUpdate: true)
            var writes = try LogWrites.plan(chunk, task: task, existing: existing, cap: cap, now: now)
            guard writes.changesLog else { return writes.appended }
            for piece in writes.pieces {
                try await tx.execute(
                    """
                    INSERT INTO log_chunks (task_id, attempt, byte_offset, data)
                    VALUES (\(task.id), \(chunk.attempt), \(piece.start), \(ByteBuffer(bytes: piece.bytes)))
                    """)
            }
            try await Self.trim(&writes, cap: cap, tx)
            let log = writes.log
            try await tx.execute(
                """
                UPDATE task_logs SET received = \(log.received), tail_stored = \(log.tailStored),
                    truncated = \(log.truncated), final = \(log.final), updated_at = \(log.updatedAt.milliseconds)
                WHERE task_id = \(log.taskID) AND attempt = \(log.attempt)
                """)
            tx.notify(.log(taskID: log.taskID))
            return writes.appended
        }
    }

    /// Deletes or shortens the oldest tail chunks while the log is over its cap.
    private static func trim(_ writes: inout LogWrites, cap: LogCap, _ tx: PostgresTransaction) async throws {
        let log = writes.log
        while let excess = writes.excess {
            guard
                let oldest = try await tx.rows(
                    """
                    SELECT byte_offset, length(data)::bigint FROM log_chunks
                    WHERE task_id = \(log.taskID) AND attempt = \(log.attempt) AND byte_offset >= \(cap.headLimit)
                    ORDER BY byte_offset LIMIT 1
                    """
                ).first
            else { return }
            let (start, size) = try oldest.decode((Int64, Int64).self)
            if size <= excess {
                try await tx.execute(
                    "DELETE FROM log_chunks WHERE task_id = \(log.taskID) AND attempt = \(log.attempt) AND byte_offset = \(start)")
                writes.dropped(size)
            } else {
                try await tx.execute(
                    """
                    UPDATE log_chunks SET data = substring(data FROM \(excess + 1)::int), byte_offset = byte_offset + \(excess)
                    WHERE task_id = \(log.taskID) AND attempt = \(log.attempt) AND byte_offset = \(start)
                    """)
                writes.dropped(excess)
            }
        }
    }

    public func readLog(taskID: String, attempt: Int?, offset: Int64, limit: Int) async throws -> LogSlice? {
        try await transaction(.read) { tx in
            guard let task = try await Self.loadTask(tx, id: taskID) else { return nil }
            let attempt = attempt ?? task.state.attempt
            let log = try await Self.loadLog(tx, taskID: taskID, attempt: attempt, forUpdate: false)
            if log?.expiredAt != nil { throw LogAppend.expired(taskID: taskID, attempt: attempt) }
            var slice = LogSlice(task: task, attempt: attempt, log: log, start: offset, bytes: [])
            // The chunk holding `offset`, then the ones after it while they follow on; a chunk
            // is at most one request body, so `limit` bytes span few of them.
            let rows = try await tx.connection.query(
                """
                SELECT byte_offset, data FROM log_chunks
                WHERE task_id = \(taskID) AND attempt = \(attempt) AND byte_offset >= coalesce(
                    (SELECT max(byte_offset) FROM log_chunks
                     WHERE task_id = \(taskID) AND attempt = \(attempt) AND byte_offset <= \(offset)), 0)
                ORDER BY byte_offset
                LIMIT \(limit / 1024 + 64)
                """, logger: tx.logger)
            for try await (start, data) in rows.decode((Int64, ByteBuffer).self) {
                guard slice.bytes.count < limit,
                    LogBytes(start: start, data: Array(data.readableBytesView)).append(to: &slice, from: offset, limit: limit)
                else { break }
            }
            return slice
        }
    }

    public func expireLogs(updatedBefore cutoff: Timestamp, limit: Int, now: Timestamp) async throws -> Int {
        try await transaction(.write) { tx in
            let keys = try await tx.rows(
                """
                SELECT task_id, attempt FROM task_logs WHERE expired_at IS NULL AND updated_at < \(cutoff.milliseconds)
                ORDER BY updated_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """
            ).map { try $0.decode((String, Int).self) }
            for (taskID, attempt) in keys {
                try await tx.execute("DELETE FROM log_chunks WHERE task_id = \(taskID) AND attempt = \(attempt)")
                try await tx.execute(
                    """
                    UPDATE task_logs SET expired_at = \(now.milliseconds), tail_stored = 0
                    WHERE task_id = \(taskID) AND attempt = \(attempt)
                    """)
            }
            return keys.count
        }
    }

    static func loadTask(_ tx: PostgresTransaction, id: String) async throws -> RunTask? {
        guard let row = try await tx.rows("SELECT run_id FROM tasks WHERE id = \(id)").first else { return nil }
        let runID = try row.decode(String.self)
        return try await loadRun(tx, runID: runID, scope: .task(id, dependents: false), forUpdate: false)?.tasks.first
    }

    static func loadLog(_ tx: PostgresTransaction, taskID: String, attempt: Int, forUpdate: Bool) async throws -> TaskLog? {
        let lock = forUpdate ? " FOR UPDATE" : ""
        guard
            let row = try await tx.rows(
                """
                SELECT run_id, runner, received, tail_stored, truncated, final, updated_at, expired_at
                FROM task_logs WHERE task_id = \(taskID) AND attempt = \(attempt)\(unescaped: lock)
                """
            ).first
        else { return nil }
        let (runID, runner, received, tailStored, truncated, final, updatedAt, expiredAt) = try row.decode(
            (String, String?, Int64, Int64, Int64, Bool, Int64, Int64?).self)
        var log = TaskLog(taskID: taskID, attempt: attempt, runID: runID, runner: runner, updatedAt: Timestamp(milliseconds: updatedAt))
        log.received = received
        log.tailStored = tailStored
        log.truncated = truncated
        log.final = final
        log.expiredAt = Timestamp(column: expiredAt)
        return log
    }
}
