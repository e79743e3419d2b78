import PostgresNIO
@testable import RunwardenStorePostgres
import RunwardenTestSupport
import Testing

/// Statements run prepared (`PreparedStatements`): once per connection, and never stuck on a
/// failed preparation.
@Suite("PostgreSQL prepared statements")
struct PostgresPreparedStatementTests {
    @Test("a statement is prepared once per connection, and one whose preparation failed runs unnamed after")
    func preparedOnceAndNeverStuck() async throws {
        // One connection, so every transaction below shares its session.
        let store = try await openPostgresStore(url: try await PostgresTestCluster.database(), maxConnections: 1)
        let probe: PostgresQuery = "SELECT count(*) FROM runs WHERE status = \("queued")"

        // Its first use comes inside a transaction already failed: the preparation fails too.
        await #expect(throws: PSQLError.self) {
            try await store.transaction(.write) { tx in
                _ = try? await tx.rows("SELECT 1 / \(0)")
                try await tx.rows(probe)
            }
        }
        // postgres-nio would answer that name with the same error forever; it runs unnamed.
        for _ in 0..<3 {
            let count = try await store.transaction(.read) { tx in try await tx.rows(probe).first?.decode(Int64.self) }
            #expect(count == 0)
        }

        let prepared = try await store.transaction(.read) { tx in
            for _ in 0..<3 { try await tx.rows("SELECT count(*) FROM tasks WHERE status = \("queued")") }
            return try await tx.rows(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT count(*) FROM%' ORDER BY statement"
            ).map { try $0.decode(String.self) }
        }
        #expect(prepared == ["SELECT count(*) FROM tasks WHERE status = $1"], "used three times, prepared once; the failed one unnamed")
    }
}
