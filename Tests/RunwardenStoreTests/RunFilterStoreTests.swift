import Foundation
import RunwardenCore
import RunwardenStore
import Testing

/// SPEC §10 run-list filters on every backend: metadata strings, creation window, statuses.
@Suite("Run-list filters")
struct RunFilterStoreTests {
    static func create(_ store: any RunStore, metadata: JSONValue?, at now: Timestamp) async throws -> Run {
        let definition = RunDefinition(run: RunSpec(workflow: "deploy", metadata: metadata), tasks: [task("a")])
        let (run, event) = Run.create(
            definition, id: Identifier.make(.run, at: now), taskIDs: [Identifier.make(.task, at: now)], eventID: Identifier.make(.evt, at: now),
            now: now)
        guard case .created(let committed) = try await store.createRun(run, event: event, idempotency: nil) else {
            throw StoreTestError.unexpected("create did not create")
        }
        return committed.record.run
    }

    static func object(_ members: [(String, JSONValue)]) -> JSONValue { .object(members.map { JSONValue.Member($0.0, $0.1) }) }

    @Test("metadata.KEY matches top-level string values exactly, with any key; created_after/before bound the window", arguments: Backend.all)
    func filters(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let odd = #"we"ird.key'$"#
        let prod = try await Self.create(store, metadata: Self.object([("env", .string("prod")), (odd, .string("x"))]), at: at(0))
        let staging = try await Self.create(store, metadata: Self.object([("env", .string("staging"))]), at: at(10))
        let number = try await Self.create(store, metadata: Self.object([("env", .int(1))]), at: at(20))
        let nested = try await Self.create(store, metadata: Self.object([("deep", Self.object([("env", .string("prod"))]))]), at: at(30))
        _ = try await Self.create(store, metadata: nil, at: at(40))
        func ids(_ query: RunQuery) async throws -> [String] { try await store.runs(query).runs.map(\.id) }

        #expect(try await ids(RunQuery(metadata: ["env": "prod"])) == [prod.id])
        #expect(try await ids(RunQuery(metadata: [odd: "x"])) == [prod.id])
        #expect(try await ids(RunQuery(metadata: ["env": "prod", odd: "y"])) == [])
        #expect(try await ids(RunQuery(metadata: ["env": "1"])) == [], "a number is not the string \"1\"")
        #expect(try await ids(RunQuery(createdAfter: at(10), createdBefore: at(30))) == [number.id, staging.id])
        #expect(try await ids(RunQuery(statuses: [.queued], createdAfter: at(30))).count == 2)
        #expect(try await ids(RunQuery(statuses: [.canceled])) == [])
        _ = nested
    }
}
