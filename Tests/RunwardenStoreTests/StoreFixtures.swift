import RunwardenTestSupport
import Foundation
import Logging
import RunwardenCore
import RunwardenStore
@testable import RunwardenStorePostgres
import RunwardenStoreSQLite

/// A backend the conformance suite runs against. Every test runs once per backend, so the
/// backends cannot drift apart.
enum Backend: String, CaseIterable, Sendable {
    case sqlite
    /// A fresh database on a throwaway PostgreSQL cluster (`PostgresTestCluster`); the tests fail (never skip) when
    /// PostgreSQL cannot start.
    case postgres

    static var all: [Backend] { allCases }

    /// A fresh, empty store, and a way to open the same database again (a restart).
    func makeStore() async throws -> (store: any RunStore, reopen: @Sendable () async throws -> any RunStore) {
        switch self {
        case .sqlite:
            let directory = try TestScratch.directory("store")
            let path = directory.appendingPathComponent("runwarden.sqlite").path
            return (try await SQLiteRunStore.open(path: path), { try await SQLiteRunStore.open(path: path) })
        case .postgres:
            let url = try await PostgresTestCluster.database()
            let store = try await openPostgresStore(url: url)
            // Another node (or a restart) on the same database: migrating again is a no-op.
            return (store, { try await openPostgresStore(url: url) })
        }
    }
}

/// A `PostgresRunStore` on `url`, running and migrated, as a server node starts it — or only
/// through migration `migratedThrough`, as an earlier release left the database. Its pool
/// runs until the test process ends.
func openPostgresStore(url: String, maxConnections: Int = 10, migratedThrough: Int64? = nil) async throws -> PostgresRunStore {
    var logger = Logger(label: "runwarden.store-tests")
    logger.logLevel = .warning
    let store = try PostgresRunStore(url: url, maxConnections: maxConnections, logger: logger)
    Task { await store.run() }
    try await store.migrate(through: migratedThrough)
    return store
}

/// A SQLite file path in a fresh temporary directory, removed by `remove`.
func temporarySQLitePath() throws -> (path: String, remove: @Sendable () -> Void) {
    let directory = try TestScratch.directory("sqlite")
    return (directory.appendingPathComponent("runwarden.sqlite").path, { try? FileManager.default.removeItem(at: directory) })
}


let t0 = Timestamp(milliseconds: 1_800_000_000_000)

func at(_ seconds: Int) -> Timestamp { t0.adding(seconds: seconds) }

/// A run built from task specs, as the server would create it.
func makeRun(_ workflow: String = "deploy", tasks: [TaskSpec], runTimeout: Int? = nil, now: Timestamp = t0) -> (Run, EventDraft) {
    let definition = RunDefinition(run: RunSpec(workflow: workflow, timeoutSeconds: runTimeout), tasks: tasks)
    let runID = Identifier.make(.run, at: now)
    return Run.create(
        definition, id: runID, taskIDs: tasks.map { _ in Identifier.make(.task, at: now) },
        eventID: Identifier.make(.evt, at: now), now: now)
}

func task(_ name: String, needs: [String] = [], workspace: String? = nil, labels: [String] = [], retries: Int = 0) -> TaskSpec {
    TaskSpec(name: name, command: .argv(["true"]), workspace: workspace, needs: needs, retries: retries, labels: labels)
}

/// Stores a new run and returns it as committed.
@discardableResult
func create(_ store: any RunStore, _ tasks: [TaskSpec], workflow: String = "deploy", now: Timestamp = t0) async throws -> Run {
    let (run, event) = makeRun(workflow, tasks: tasks, now: now)
    guard case .created(let committed) = try await store.createRun(run, event: event, idempotency: nil) else {
        throw StoreTestError.unexpected("create did not create")
    }
    return committed.record.run
}

enum StoreTestError: Error { case unexpected(String) }
