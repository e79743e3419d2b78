import Foundation
import GRDB
import Testing

@testable import RunwardenStoreSQLite

/// What only the SQLite backend must get right.
@Suite("SQLite store")
struct SQLiteSpecificTests {
    @Test("the connection that commits runs with synchronous = FULL: every acknowledged commit is synced to the WAL")
    func writerSyncsEveryCommit() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("runwarden-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await SQLiteRunStore.open(path: directory.appendingPathComponent("runwarden.sqlite").path)

        let level = try await store.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        let mode = try await store.pool.write { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(level == 2, "PRAGMA synchronous is \(level.map(String.init) ?? "nil"), not FULL (2)")
        #expect(mode == "wal")
    }
}
