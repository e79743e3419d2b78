import Foundation
import RunwardenCore
import RunwardenStore
import Testing

@testable import RunwardenServer

/// A cached snapshot is used only while everything it was rendered from is unchanged.
@Suite("Snapshot cache")
struct SnapshotCacheTests {
    static func record(workspace: String? = "repo") -> RunRecord {
        let now = Timestamp(milliseconds: 1_767_225_600_000)
        let specs = [TaskSpec(name: "a", command: .argv(["true"]), workspace: workspace)]
        let (run, _) = Run.create(
            RunDefinition(run: RunSpec(workflow: "w"), tasks: specs), id: Identifier.make(.run, at: now),
            taskIDs: [Identifier.make(.task, at: now)], eventID: Identifier.make(.evt, at: now), now: now)
        return RunRecord(run: run, lockHolders: [:])
    }

    static func rendered(_ record: RunRecord) -> Data {
        JSONValueEncoder.data(Snapshot.run(record.run, lockHolders: record.lockHolders))
    }

    @Test func everyInputThatCanChangeWithoutAVersionStepIsRenderedAfresh() throws {
        let cache = SnapshotCache(capacity: 4)
        var record = Self.record()
        #expect(cache.bytes(of: record) == Self.rendered(record))

        record.run.tasks[0].state.heartbeatAt = Timestamp(milliseconds: 1_767_225_601_000)  // no version step
        #expect(cache.bytes(of: record) == Self.rendered(record))
        #expect(String(decoding: cache.bytes(of: record), as: UTF8.self).contains("2026-01-01T00:00:01.000Z"))

        record.lockHolders = ["repo": "task_other"]  // another run's task took the workspace
        #expect(cache.bytes(of: record) == Self.rendered(record))

        record.run.state.version += 1
        record.run.state.outputRef = "s3://x"
        #expect(cache.bytes(of: record) == Self.rendered(record))
        #expect(String(decoding: cache.bytes(of: record), as: UTF8.self).contains("s3://x"))
    }

    @Test func manyRunsStayBoundedAndEachRendersItself() {
        let cache = SnapshotCache(capacity: 2)
        let records = (0..<7).map { _ in Self.record() }
        for record in records + records { #expect(cache.bytes(of: record) == Self.rendered(record)) }
    }

    /// On SQLite a plain read of an unchanged run answers from the cache without reading the
    /// store (`SnapshotStamp`), so what reaches a snapshot without stepping its run's version —
    /// a heartbeat, another run taking or freeing a workspace — must still be seen at once.
    @Test func aPlainReadSeesWhatChangesWithoutAVersionStep() async throws {
        try await withApp { client in
            let workspace = #""workspace":"repo""#
            let holder = try #require(try await client.createRun(runBody(tasks: "[\(taskJSON("hold", extra: workspace))]"))["id"]?.asString)
            let waiter = try #require(try await client.createRun(runBody(tasks: "[\(taskJSON("wait", extra: workspace))]"))["id"]?.asString)
            let waiting = try await client.snapshot(waiter)  // cached now
            #expect(waiting.task(named: "wait")?["blocked_by"] == .null)

            let holding = try await client.claimTaskID()
            let blocked = try await client.snapshot(waiter)
            #expect(blocked["version"] == waiting["version"])
            #expect(blocked.task(named: "wait")?["blocked_by"]?["held_by"]?.asString == holding)

            let claimed = try #require(try await client.snapshot(holder).task(named: "hold")?["heartbeat_at"]?.asString)
            var beaten = claimed
            for _ in 0..<200 where beaten == claimed {  // until the clock has moved a millisecond
                _ = try await client.send(.post, "/v1/runners/host-a/heartbeat", json: #"{"tasks":["\#(holding)"]}"#)
                beaten = try #require(try await client.snapshot(holder).task(named: "hold")?["heartbeat_at"]?.asString)
            }
            #expect(beaten != claimed)

            try await client.reportOK(holding, reportBody("running"))
            try await client.reportOK(holding, reportBody("succeeded", #""exit_code":0"#))
            let freed = try await client.snapshot(waiter)
            #expect(freed["version"] == waiting["version"])
            #expect(freed.task(named: "wait")?["blocked_by"] == .null)
        }
    }
}
