import Foundation
import GRDB
import RunwardenCore
import Testing

@testable import RunwardenStore
@testable import RunwardenStoreSQLite

/// The JSON kept in `spec`, `state` and `attempts` columns outlives the Swift that wrote it:
/// its keys are pinned by explicit `CodingKeys`, and rows written by the schema of v8 (before
/// they were pinned) still read back field for field.
@Suite("Stored JSON format")
struct StoredFormatTests {
    /// A run, its failed task and the run's error exactly as the v8 schema's code wrote them.
    static let v8RunState = """
        {"status":"failed","version":4,"createdAt":{"milliseconds":1767225600000},\
        "updatedAt":{"milliseconds":1767225660000},"startedAt":{"milliseconds":1767225601000},\
        "finishedAt":{"milliseconds":1767225660000},"error":{"code":"task_failed","message":"task \\"build\\" failed: exit 2",\
        "taskID":"TASK","retryable":false,"cause":{"code":"exit_code","message":"exit 2","retryable":false}},"lastRunSeq":4}
        """
    static let v8RunSpec = #"{"workflow":"deploy","timeoutSeconds":600,"metadata":{"sha":"abc"}}"#
    static let v8TaskSpec = """
        {"name":"build","command":{"shell":{"_0":"make all"}},"env":{"CI":"1"},"workspace":"repo-a","needs":[],\
        "timeoutSeconds":30,"retries":2,"allowFailure":true,"labels":["linux"]}
        """
    static let v8TaskState = """
        {"status":"failed","attempt":1,"runner":"r1","claimedAt":{"milliseconds":1767225600500},\
        "startedAt":{"milliseconds":1767225601000},"finishedAt":{"milliseconds":1767225660000},"exitCode":2,\
        "error":{"code":"exit_code","message":"exit 2","retryable":false},"progress":{"done":3,"total":10},\
        "outputRef":"s3://out","outputRefAt":{"milliseconds":1767225650000},"holdsLock":false}
        """

    @Test("a run row written by the v8 schema reads back field for field")
    func readsARowWrittenByTheV8Schema() async throws {
        let (path, remove) = try temporarySQLitePath()
        defer { remove() }
        let (run, event) = makeRun(tasks: [task("build")])
        let taskID = run.tasks[0].id
        do {
            let store = try await SQLiteRunStore.open(path: path)
            _ = try await store.createRun(run, event: event, idempotency: nil)
            try await store.pool.write { db in
                try db.execute(
                    sql: "UPDATE runs SET status = 'failed', spec = ?, state = ? WHERE id = ?",
                    arguments: [Self.v8RunSpec, Self.v8RunState.replacingOccurrences(of: "TASK", with: taskID), run.id])
                try db.execute(
                    sql: "UPDATE tasks SET status = 'failed', spec = ?, state = ? WHERE id = ?",
                    arguments: [Self.v8TaskSpec, Self.v8TaskState, taskID])
            }
        }
        let reopened = try await SQLiteRunStore.open(path: path)
        let stored = try #require(try await reopened.run(id: run.id)).run

        #expect(stored.spec == RunSpec(workflow: "deploy", timeoutSeconds: 600, metadata: .object(["sha": .string("abc")])))
        #expect(stored.state.status == .failed && stored.state.version == 4 && stored.state.lastRunSeq == 4)
        #expect(stored.state.finishedAt == Timestamp(milliseconds: 1_767_225_660_000))
        #expect(stored.state.error?.taskID == taskID, "the error's task id, spelled taskID in v8 rows")
        #expect(stored.state.error?.cause == TaskError(code: "exit_code", message: "exit 2"))
        let task = stored.tasks[0]
        #expect(
            task.spec
                == TaskSpec(
                    name: "build", command: .shell("make all"), env: ["CI": "1"], workspace: "repo-a", timeoutSeconds: 30,
                    retries: 2, allowFailure: true, labels: ["linux"]))
        #expect(task.state.status == .failed && task.state.runner == "r1" && task.state.exitCode == 2)
        #expect(task.state.progress == TaskProgress(done: 3, total: 10))
        #expect(task.state.outputRef == "s3://out" && task.state.outputRefAt == Timestamp(milliseconds: 1_767_225_650_000))
    }

    @Test("what is written today has the v8 keys (and task_id in a run's error)")
    func writesTheSameKeys() throws {
        func keys(_ text: String) throws -> Set<String> { Set(try JSONValue.parse(Data(text.utf8)).objectMembers?.map(\.key) ?? []) }
        let spec = try JSONColumn.decode(TaskSpec.self, Self.v8TaskSpec)
        #expect(try keys(JSONColumn.encode(spec)) == keys(Self.v8TaskSpec))
        let state = try JSONColumn.decode(TaskState.self, Self.v8TaskState)
        #expect(try keys(JSONColumn.encode(state)) == keys(Self.v8TaskState))
        let runSpec = try JSONColumn.decode(RunSpec.self, Self.v8RunSpec)
        #expect(try keys(JSONColumn.encode(runSpec)) == keys(Self.v8RunSpec))
        let runState = try JSONColumn.decode(RunState.self, Self.v8RunState)
        #expect(try keys(JSONColumn.encode(runState)) == keys(Self.v8RunState))
        let error = try #require(runState.error)
        #expect(try keys(JSONColumn.encode(error)) == ["code", "message", "task_id", "retryable", "cause"])
        let attempt = DeliveryAttempt(at: Timestamp(milliseconds: 5), statusCode: 503, latencyMs: 12, error: "busy")
        #expect(try keys(JSONColumn.encode(attempt)) == ["at", "statusCode", "latencyMs", "error"])
    }

    @Test("a run's concurrency key and slot are stored under pinned keys and values")
    func concurrencyIsPinned() throws {
        let spec = RunSpec(workflow: "deploy", concurrency: ConcurrencySpec(key: "deploy-prod", limit: 2, onConflict: .cancelRunning))
        let stored = try JSONValue.parse(Data(JSONColumn.encode(spec).utf8))["concurrency"]
        #expect(Set(stored?.objectMembers?.map(\.key) ?? []) == ["key", "limit", "onConflict"])
        #expect(stored?["onConflict"] == .string("cancel_running"))
        var state = RunState(createdAt: Timestamp(milliseconds: 1))
        state.concurrencySlot = .waiting
        #expect(try JSONColumn.encode(state).contains(#""concurrencySlot":"waiting""#))
        #expect(try JSONColumn.decode(RunSpec.self, JSONColumn.encode(spec)) == spec)
        #expect(try JSONColumn.decode(RunSpec.self, Self.v8RunSpec).concurrency == nil)
        #expect(try JSONColumn.decode(RunState.self, Self.v8RunState.replacingOccurrences(of: "TASK", with: "t")).concurrencySlot == nil)
    }
}
