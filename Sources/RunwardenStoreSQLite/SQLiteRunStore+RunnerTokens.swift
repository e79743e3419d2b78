import GRDB
import RunwardenCore
import RunwardenStore

/// Per-runner tokens on SQLite (SPEC §8).
extension SQLiteRunStore {
    public func createRunnerToken(_ token: RunnerToken) async throws {
        try await writing { db in
            try db.execute(
                sql: "INSERT INTO runner_tokens (\(RunnerTokenSQL.columns)) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    token.id, token.digest, token.description, try token.scope.runnerNames.map { try JSONColumn.encode($0) },
                    try token.scope.labels.map { try JSONColumn.encode($0) }, token.expiresAt?.milliseconds, token.createdAt.milliseconds,
                ])
        }
    }

    public func runnerToken(digest: String) async throws -> RunnerToken? {
        try await reading { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(RunnerTokenSQL.columns) FROM runner_tokens WHERE token_sha256 = ?"), arguments: [digest]
            ).map(Self.runnerToken)
        }
    }

    public func runnerTokens(limit: Int, after: String?) async throws -> (items: [RunnerToken], nextCursor: String?) {
        try await reading { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(RunnerTokenSQL.columns) FROM runner_tokens WHERE id > ? ORDER BY id LIMIT ?"),
                arguments: [after ?? "", limit + 1])
            let items = try rows.prefix(limit).map(Self.runnerToken)
            return (items, rows.count > limit ? items.last?.id : nil)
        }
    }

    public func revokeRunnerToken(id: String) async throws -> Bool {
        try await writing { db in
            try db.execute(sql: "DELETE FROM runner_tokens WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    private static func runnerToken(_ row: Row) throws -> RunnerToken {
        try RunnerTokenSQL.token(
            id: row["id"], digest: row["token_sha256"], description: row["description"], runnerNames: row["runner_names"],
            labels: row["labels"], expiresAt: row["expires_at"], createdAt: row["created_at"])
    }
}
