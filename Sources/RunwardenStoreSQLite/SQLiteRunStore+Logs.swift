import Foundation
import GRDB
import RunwardenCore
import RunwardenStore

/// Task logs (`LogStore`): one `task_logs` row per attempt, its bytes in `log_chunks`.
extension SQLiteRunStore {
    public func appendLog(_ chunk: LogChunk, cap: LogCap, now: Timestamp) async throws -> LogAppended? {
        try await writing { db in try Self.appendLog(db, chunk, cap: cap, now: now) }
    }

    public func readLog(taskID: String, attempt: Int?, offset: Int64, limit: Int) async throws -> LogSlice? {
        try await reading { db in
            guard let task = try Self.loadTask(db, id: taskID) else { return nil }
            let attempt = attempt ?? task.state.attempt
            let log = try Self.loadLog(db, taskID: taskID, attempt: attempt)
            if log?.expiredAt != nil { throw LogAppend.expired(taskID: taskID, attempt: attempt) }
            var slice = LogSlice(task: task, attempt: attempt, log: log, start: offset, bytes: [])
            // The chunk holding `offset`, then the ones after it, while they follow on.
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT byte_offset, data FROM log_chunks
                        WHERE task_id = ? AND attempt = ? AND byte_offset >= coalesce(
                            (SELECT max(byte_offset) FROM log_chunks WHERE task_id = ? AND attempt = ? AND byte_offset <= ?), 0)
                        ORDER BY byte_offset
                        """),
                arguments: [taskID, attempt, taskID, attempt, offset])
            while let row = try rows.next(), slice.bytes.count < limit {
                let chunk = LogBytes(start: row["byte_offset"], data: row["data"] as Data)
                guard chunk.append(to: &slice, from: offset, limit: limit) else { break }
            }
            return slice
        }
    }

    public func expireLogs(updatedBefore cutoff: Timestamp, limit: Int, now: Timestamp) async throws -> Int {
        try await writing { db in
            let keys = try Row.fetchAll(
                db.cachedStatement(
                    sql: "SELECT task_id, attempt FROM task_logs WHERE expired_at IS NULL AND updated_at < ? ORDER BY updated_at LIMIT ?"),
                arguments: [cutoff.milliseconds, limit])
            for key in keys {
                let arguments: StatementArguments = [key["task_id"] as String, key["attempt"] as Int]
                try db.executeCached(sql: "DELETE FROM log_chunks WHERE task_id = ? AND attempt = ?", arguments: arguments)
                try db.executeCached(
                    sql: "UPDATE task_logs SET expired_at = ?, tail_stored = 0 WHERE task_id = ? AND attempt = ?",
                    arguments: [now.milliseconds] + arguments)
            }
            if !keys.isEmpty { try db.execute(sql: "PRAGMA incremental_vacuum") }
            return keys.count
        }
    }

    static func appendLog(_ db: Database, _ chunk: LogChunk, cap: LogCap, now: Timestamp) throws -> LogAppended? {
        guard let task = try loadTask(db, id: chunk.taskID) else { return nil }
        var writes = try LogWrites.plan(
            chunk, task: task, existing: try loadLog(db, taskID: chunk.taskID, attempt: chunk.attempt), cap: cap, now: now)
        guard writes.changesLog else { return writes.appended }
        let log = writes.log
        for piece in writes.pieces {
            try db.executeCached(
                sql: "INSERT INTO log_chunks (task_id, attempt, byte_offset, data) VALUES (?, ?, ?, ?)",
                arguments: [log.taskID, log.attempt, piece.start, Data(piece.bytes)])
        }
        while let excess = writes.excess {
            guard
                let oldest = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT byte_offset, length(data) AS size FROM log_chunks
                            WHERE task_id = ? AND attempt = ? AND byte_offset >= ? ORDER BY byte_offset LIMIT 1
                            """),
                    arguments: [log.taskID, log.attempt, cap.headLimit])
            else { break }
            let start: Int64 = oldest["byte_offset"]
            let size: Int64 = oldest["size"]
            if size <= excess {
                try db.executeCached(
                    sql: "DELETE FROM log_chunks WHERE task_id = ? AND attempt = ? AND byte_offset = ?",
                    arguments: [log.taskID, log.attempt, start])
                writes.dropped(size)
            } else {
                try db.executeCached(
                    sql: """
                        UPDATE log_chunks SET data = substr(data, ? + 1), byte_offset = byte_offset + ?
                        WHERE task_id = ? AND attempt = ? AND byte_offset = ?
                        """,
                    arguments: [excess, excess, log.taskID, log.attempt, start])
                writes.dropped(excess)
            }
        }
        let saved = writes.log
        try db.executeCached(
            sql: """
                INSERT INTO task_logs (task_id, attempt, run_id, runner, received, tail_stored, truncated, final, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (task_id, attempt) DO UPDATE SET received = excluded.received,
                    tail_stored = excluded.tail_stored, truncated = excluded.truncated, final = excluded.final,
                    updated_at = excluded.updated_at
                """,
            arguments: [
                saved.taskID, saved.attempt, saved.runID, saved.runner, saved.received, saved.tailStored, saved.truncated,
                saved.final, saved.updatedAt.milliseconds,
            ])
        return writes.appended
    }

    static func loadTask(_ db: Database, id: String) throws -> RunTask? {
        guard let runID = try String.fetchOne(db.cachedStatement(sql: "SELECT run_id FROM tasks WHERE id = ?"), arguments: [id])
        else { return nil }
        return try loadRun(db, runID: runID, scope: .task(id, dependents: false))?.tasks.first
    }

    static func loadLog(_ db: Database, taskID: String, attempt: Int) throws -> TaskLog? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT run_id, runner, received, tail_stored, truncated, final, updated_at, expired_at
                        FROM task_logs WHERE task_id = ? AND attempt = ?
                        """),
                arguments: [taskID, attempt])
        else { return nil }
        var log = TaskLog(
            taskID: taskID, attempt: attempt, runID: row["run_id"], runner: row["runner"],
            updatedAt: Timestamp(milliseconds: row["updated_at"]))
        log.received = row["received"]
        log.tailStored = row["tail_stored"]
        log.truncated = row["truncated"]
        log.final = row["final"]
        log.expiredAt = Timestamp(column: row["expired_at"])
        return log
    }
}
