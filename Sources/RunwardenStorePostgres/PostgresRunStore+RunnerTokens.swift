import PostgresNIO
import RunwardenCore
import RunwardenStore

/// Per-runner tokens on PostgreSQL (SPEC §8).
extension PostgresRunStore {
    public func createRunnerToken(_ token: RunnerToken) async throws {
        let names = try token.scope.runnerNames.map { try JSONColumn.encode($0) }
        let labels = try token.scope.labels.map { try JSONColumn.encode($0) }
        try await transaction(.write) { tx in
            try await tx.execute(
                """
                INSERT INTO runner_tokens (\(unescaped: RunnerTokenSQL.columns))
                VALUES (\(token.id), \(token.digest), \(token.description), \(names), \(labels), \(token.expiresAt?.milliseconds),
                        \(token.createdAt.milliseconds))
                """)
        }
    }

    public func runnerToken(digest: String) async throws -> RunnerToken? {
        try await transaction(.read) { tx in
            try await tx.rows("SELECT \(unescaped: RunnerTokenSQL.columns) FROM runner_tokens WHERE token_sha256 = \(digest)")
                .first.map(Self.runnerToken)
        }
    }

    public func runnerTokens(limit: Int, after: String?) async throws -> (items: [RunnerToken], nextCursor: String?) {
        try await transaction(.read) { tx in
            let rows = try await tx.rows(
                "SELECT \(unescaped: RunnerTokenSQL.columns) FROM runner_tokens WHERE id > \(after ?? "") ORDER BY id LIMIT \(limit + 1)")
            let items = try rows.prefix(limit).map(Self.runnerToken)
            return (items, rows.count > limit ? items.last?.id : nil)
        }
    }

    public func revokeRunnerToken(id: String) async throws -> Bool {
        try await transaction(.write) { tx in
            !(try await tx.rows("DELETE FROM runner_tokens WHERE id = \(id) RETURNING id").isEmpty)
        }
    }

    private static func runnerToken(_ row: PostgresRow) throws -> RunnerToken {
        let (id, digest, description, names, labels, expiresAt, createdAt) = try row.decode(
            (String, String, String, String?, String?, Int64?, Int64).self)
        return try RunnerTokenSQL.token(
            id: id, digest: digest, description: description, runnerNames: names, labels: labels, expiresAt: expiresAt,
            createdAt: createdAt)
    }
}
