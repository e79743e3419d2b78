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
}
