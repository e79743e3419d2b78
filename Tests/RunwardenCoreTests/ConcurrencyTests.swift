import RunwardenCore
import Testing

/// SPEC §10 "Concurrency": the create body's `concurrency`, the rules of a key's line, and how
/// a waiting run looks and is admitted.
@Suite("Concurrency keys")
struct ConcurrencyTests {
    static let oneTask = #""tasks":[{"name":"a","command":"x"}]"#

    @Test func limitAndOnConflictTakeTheirDefaults() throws {
        let definition = try RunDefinition.parse(json(#"{"workflow":"w","concurrency":{"key":"deploy-prod"},\#(Self.oneTask)}"#)).get()
        #expect(definition.run.concurrency == ConcurrencySpec(key: "deploy-prod", limit: 1, onConflict: .queue))
        let given = try RunDefinition.parse(
            json(#"{"workflow":"w","concurrency":{"key":"k","limit":3,"on_conflict":"cancel_running"},\#(Self.oneTask)}"#)
        ).get()
        #expect(given.run.concurrency == ConcurrencySpec(key: "k", limit: 3, onConflict: .cancelRunning))
    }

    @Test(arguments: [
        (#"{"key":"k","limit":0}"#, "concurrency.limit"),
        (#"{"key":"k","limit":-1}"#, "concurrency.limit"),
        (#"{"key":"k","limit":9223372036854775807}"#, "concurrency.limit"),
        (#"{"key":"k","limit":1.5}"#, "concurrency.limit"),
        (#"{"key":""}"#, "concurrency.key"),
        (#"{"limit":1}"#, "concurrency.key"),
        (#"{"key":"\#(String(repeating: "k", count: 201))"}"#, "concurrency.key"),
        (#"{"key":"a\u0007b"}"#, "concurrency.key"),
        (#"{"key":7}"#, "concurrency.key"),
        (#"{"key":"k","on_conflict":"cancel_all"}"#, "concurrency.on_conflict"),
        (#"{"key":"k","on_conflict":1}"#, "concurrency.on_conflict"),
        (#"{"key":"k","wait":true}"#, "concurrency.wait"),
        (#""deploy-prod""#, "concurrency"),
    ])
    func aBadConcurrencyIs422NamingTheField(concurrency: String, field: String) {
        let body = #"{"workflow":"w","concurrency":\#(concurrency),\#(Self.oneTask)}"#
        guard case .failure(let failure) = RunDefinition.parse(json(body)) else {
            Issue.record("accepted: \(body)")
            return
        }
        #expect(failure.errors.map(\.field) == [field])
    }

    static let line = [
        ConcurrencyMember(runID: "run_a", status: .running, slot: .holding),
        ConcurrencyMember(runID: "run_b", status: .queued, slot: .holding),
        ConcurrencyMember(runID: "run_c", status: .queued, slot: .waiting),
        ConcurrencyMember(runID: "run_d", status: .canceling, slot: .holding),
    ]

    @Test func queueCancelsNothing() {
        #expect(ConcurrencyRules.victims(of: .queue, among: Self.line).isEmpty)
    }

    @Test func cancelPendingTakesTheRunsThatHaveNotStartedWaitingOnesFirst() {
        #expect(ConcurrencyRules.victims(of: .cancelPending, among: Self.line) == ["run_c", "run_b"])
    }

    @Test func cancelRunningTakesEveryUnfinishedRunButOneAlreadyCanceling() {
        #expect(ConcurrencyRules.victims(of: .cancelRunning, among: Self.line) == ["run_c", "run_a", "run_b"])
    }

    @Test func aRunTakesASlotOnlyWhenOneIsFreeAndNobodyWaitsAhead() {
        #expect(ConcurrencyRules.admits(holders: 0, waitingAhead: 0, limit: 1))
        #expect(!ConcurrencyRules.admits(holders: 1, waitingAhead: 0, limit: 1))
        #expect(!ConcurrencyRules.admits(holders: 0, waitingAhead: 1, limit: 1))
        #expect(ConcurrencyRules.admits(holders: 1, waitingAhead: 0, limit: 2))
    }

    static func keyedRun() -> Run {
        let definition = RunDefinition(
            run: RunSpec(workflow: "deploy", priority: 5, concurrency: ConcurrencySpec(key: "deploy-prod")),
            tasks: [
                TaskSpec(name: "build", command: .argv(["true"]), priority: 5),
                TaskSpec(name: "ship", command: .argv(["true"]), needs: ["build"], priority: 5),
            ])
        return Run.create(definition, id: "run_w", taskIDs: ["task_1", "task_2"], eventID: "evt_1", now: t0).run
    }

    @Test func aWaitingRunHasNoQueuedTaskAndShowsWhoHoldsItsKey() {
        var run = Self.keyedRun()
        run.waitForConcurrencySlot()
        #expect(run.tasks.map(\.status) == [.pending, .pending])
        #expect(run.state.taskCounts == TaskCounts(run.tasks))
        let rendered = JSONValueEncoder.encode(Snapshot.run(run, lockHolders: [:], concurrencyHolders: ["run_h"]))
        // Compared canonically: a parsed object's member order is not the written one.
        #expect(rendered["blocked_by"]?.canonical == json(#"{"concurrency":"deploy-prod","held_by":["run_h"]}"#).canonical)
        #expect(rendered["concurrency"]?.canonical == json(#"{"key":"deploy-prod","limit":1,"on_conflict":"queue"}"#).canonical)
        #expect(rendered["priority"] == .int(5))
    }

    @Test func admissionQueuesTheTasksWithNoNeedsLeftWithTheirEvents() {
        var run = Self.keyedRun()
        run.waitForConcurrencySlot()
        var change = RunChange(run, now: t0.adding(seconds: 5))
        change.admit()
        let admitted = change.committed
        #expect(admitted.state.concurrencySlot == .holding)
        #expect(admitted.tasks.map(\.status) == [.queued, .pending])
        #expect(admitted.state.version == run.state.version + 1)
        #expect(change.events.map(\.type) == ["task.queued"])
        #expect(JSONValueEncoder.encode(Snapshot.run(admitted, lockHolders: [:]))["blocked_by"] == .null)
    }

    @Test func everyEndReleasesTheSlot() throws {
        var run = Self.keyedRun()
        run.state.concurrencySlot = .holding
        var change = RunChange(run, now: t0.adding(seconds: 5))
        try change.cancel()
        #expect(change.committed.status == .canceled)
        #expect(change.committed.state.concurrencySlot == .released)
    }

    @Test func aRunWithoutAKeyShowsNullsAndItsPriority() {
        let definition = RunDefinition(run: RunSpec(workflow: "w"), tasks: [TaskSpec(name: "a", command: .argv(["true"]), priority: -2)])
        let run = Run.create(definition, id: "run_p", taskIDs: ["task_1"], eventID: "evt_1", now: t0).run
        let rendered = JSONValueEncoder.encode(Snapshot.run(run, lockHolders: [:]))
        #expect(rendered["blocked_by"] == .null)
        #expect(rendered["concurrency"] == .null)
        #expect(rendered["priority"] == .int(0))
        guard case .array(let tasks) = rendered["tasks"] else {
            Issue.record("no tasks in \(rendered)")
            return
        }
        #expect(tasks.first?["priority"] == .int(-2))
        #expect(JSONValueEncoder.encode(Snapshot.claimed(run.tasks[0]))["priority"] == .int(-2))
    }
}
