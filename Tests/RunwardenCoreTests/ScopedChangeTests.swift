import RunwardenCore
import RunwardenTestSupport
import Testing

/// A change applied to only the tasks it is about (`RunChange(hasWholeRun: false)`, as the
/// stores load a `ChangeScope`) must leave the run exactly as the same change applied to the
/// whole run: the kept task counts and `needsLeft` stand in for the tasks not loaded.
@Suite("Scoped changes")
struct ScopedChangeTests {
    /// What a store does, on an in-memory run: load the scope, apply, and when the change
    /// reaches past its scope, apply it again to the whole run.
    struct ScopedStore {
        var run: Run
        var wholeRunChanges = 0

        mutating func apply(_ scope: Scope, now: Timestamp, _ body: (inout RunChange) throws -> Void) rethrows -> [EventDraft] {
            if case .task(let id, let withDependents) = scope {
                let target = run.tasks.first { $0.id == id }
                let wanted = Set([id] + (withDependents ? target?.dependents ?? [] : []))
                var partial = run
                partial.tasks = run.tasks.filter { wanted.contains($0.id) }
                var change = RunChange(partial, now: now, hasWholeRun: false)
                try body(&change)
                if !change.needsWholeRun {
                    let committed = change.committed
                    #expect(committed.tasks.count == wanted.count, "a scoped change keeps to its tasks")
                    let changed = Dictionary(uniqueKeysWithValues: committed.tasks.map { ($0.id, $0) })
                    run.state = committed.state
                    run.tasks = run.tasks.map { changed[$0.id] ?? $0 }
                    return change.events
                }
            }
            wholeRunChanges += 1
            var change = RunChange(run, now: now)
            try body(&change)
            run = change.committed
            return change.events
        }
    }

    enum Scope {
        case task(String, dependents: Bool)
        case wholeRun
    }

    /// A random run: each task may need some earlier ones, may fail, may retry.
    static func randomRun(_ random: inout SeededRandom, size: Int) -> Run {
        let specs = (0..<size).map { index in
            let needs = (0..<index).filter { _ in Int.random(in: 0..<8, using: &random) == 0 }.map { "t\($0)" }
            return TaskSpec(
                name: "t\(index)", command: .argv(["true"]), needs: needs, retries: Int.random(in: 0...1, using: &random),
                allowFailure: Int.random(in: 0..<4, using: &random) == 0)
        }
        let definition = RunDefinition(run: RunSpec(workflow: "random"), tasks: specs)
        return Run.create(definition, id: "run_1", taskIDs: specs.map { "task_" + $0.name }, eventID: "evt_0", now: t0).run
    }

    /// Events compared without their random ids.
    static func comparable(_ events: [EventDraft]) -> [String] {
        events.map { "\($0.taskID ?? "run") \($0.type) \($0.previousStatus ?? "-")→\($0.status) \($0.attempt ?? 0) \($0.error?.code ?? "")" }
    }

    @Test("random runs driven by random changes end the same scoped as whole, event for event", arguments: 0..<40)
    func scopedEqualsWhole(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let run = Self.randomRun(&random, size: Int.random(in: 2...30, using: &random))
        var whole = run
        var scoped = ScopedStore(run: run)
        var now = t0
        var steps = 0
        while !whole.status.isTerminal, steps < 400 {
            steps += 1
            now = now.adding(seconds: 1)
            let task = whole.tasks[Int.random(in: 0..<whole.tasks.count, using: &random)]
            let roll = Int.random(in: 0..<100, using: &random)
            let body: (inout RunChange) throws -> Void
            let scope: Scope
            switch (task.status, roll) {
            case (_, 0..<2):
                body = { try? $0.cancel() }
                scope = .wholeRun
            case (_, 2..<3):
                body = { $0.runTimedOut() }
                scope = .wholeRun
            case (.queued, _):
                body = { change in try? change.claim(taskID: task.id, runner: "r") }
                scope = .task(task.id, dependents: false)
            case (.dispatched, 3..<40):
                body = { change in _ = try? change.report(taskID: task.id, StatusReport(status: .running), runner: "r") }
                scope = .task(task.id, dependents: false)
            case (.dispatched, _), (.running, _), (.canceling, _):
                let outcomes: [TaskStatus] = [.succeeded, .succeeded, .succeeded, .failed, .canceled, .timedOut]
                let outcome = outcomes[Int.random(in: 0..<outcomes.count, using: &random)]
                switch roll {
                case 3..<10:
                    body = { $0.leaseExpired(taskID: task.id) }
                case 10..<14:
                    body = { $0.taskTimedOut(taskID: task.id) }
                default:
                    body = { change in _ = try? change.report(taskID: task.id, StatusReport(status: outcome, exitCode: 0), runner: "r") }
                }
                scope = .task(task.id, dependents: true)
            default:
                continue
            }
            var change = RunChange(whole, now: now)
            try body(&change)
            whole = change.committed
            let scopedEvents = try scoped.apply(scope, now: now, body)
            #expect(Self.comparable(scopedEvents) == Self.comparable(change.events), "seed \(seed) step \(steps)")
            #expect(scoped.run == whole, "seed \(seed) step \(steps): the scoped run drifted from the whole one")
            Self.checkRollup(scoped.run, "seed \(seed) step \(steps)")
            if scoped.run != whole { return }
        }
        // Only ending, failing or canceling the run, or a skip cascade, reaches for the whole
        // run: a run ends once, so most changes stay within their scope.
        #expect(scoped.wholeRunChanges <= 1 || scoped.wholeRunChanges * 2 <= steps, "seed \(seed): \(scoped.wholeRunChanges) of \(steps)")
    }

    /// SPEC §1's rollup, checked on every task after a change (not by the code under test):
    /// the kept counts are the true counts; a pending task's `needsLeft` is its number of unmet
    /// needs; and while the run goes on, no pending task has all its needs met (it is queued)
    /// or a need that ended unmet (it is skipped).
    static func checkRollup(_ run: Run, _ context: String) {
        #expect(run.state.taskCounts == TaskCounts(run.tasks), "\(context): counts")
        let byName = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.name, $0) })
        for task in run.tasks where task.status == .pending {
            let needs = task.spec.needs.compactMap { byName[$0] }
            let met = needs.filter { $0.status == .succeeded || ($0.spec.allowFailure && [.failed, .timedOut].contains($0.status)) }
            #expect(task.state.needsLeft == needs.count - met.count, "\(context): needsLeft of \(task.name)")
            guard !run.status.isTerminal, run.status != .canceling else { continue }
            #expect(met.count < needs.count, "\(context): \(task.name) has every need met but is still pending")
            let unmet = needs.filter { $0.status.isTerminal && !met.map(\.id).contains($0.id) }
            #expect(unmet.isEmpty, "\(context): \(task.name) needs a task that ended unmet but is still pending")
        }
    }

    @Test("a run written before counts were kept is counted by its next change, which loads it whole")
    func rowsWithoutCountsAreCountedOnce() {
        var run = Run.create(
            RunDefinition(run: RunSpec(workflow: "old"), tasks: [task("a"), task("b", needs: ["a"])]), id: "run_1",
            taskIDs: ["task_a", "task_b"], eventID: "evt_0", now: t0
        ).run
        run.state.taskCounts = nil
        run.tasks[1].state.needsLeft = nil
        var partial = run
        partial.tasks = [run.tasks[0]]
        var scoped = RunChange(partial, now: t0.adding(seconds: 1), hasWholeRun: false)
        try? scoped.claim(taskID: "task_a", runner: "r")
        #expect(scoped.needsWholeRun)

        var whole = RunChange(run, now: t0.adding(seconds: 1))
        try? whole.claim(taskID: "task_a", runner: "r")
        #expect(!whole.needsWholeRun)
        #expect(whole.committed.state.taskCounts == TaskCounts(whole.committed.tasks))
        #expect(whole.committed.tasks[1].state.needsLeft == 1)
    }

    @Test("a task that ends counts down only the tasks that need it, and the last need queues them")
    func fanInQueuesAtTheLastNeed() throws {
        let specs = (0..<50).map { task("n\($0)") } + [task("join", needs: (0..<50).map { "n\($0)" })]
        var scoped = ScopedStore(
            run: Run.create(
                RunDefinition(run: RunSpec(workflow: "fan-in"), tasks: specs), id: "run_1",
                taskIDs: specs.map { "task_" + $0.name }, eventID: "evt_0", now: t0
            ).run)
        var now = t0
        for index in 0..<50 {
            let id = "task_n\(index)"
            now = now.adding(seconds: 1)
            _ = scoped.apply(.task(id, dependents: false), now: now) { try? $0.claim(taskID: id, runner: "r") }
            _ = scoped.apply(.task(id, dependents: true), now: now) {
                _ = try? $0.report(taskID: id, StatusReport(status: .succeeded), runner: "r")
            }
            let join = try #require(scoped.run.tasks.last)
            #expect(join.state.needsLeft == 49 - index)
            #expect(join.status == (index == 49 ? .queued : .pending))
        }
        #expect(scoped.wholeRunChanges == 0, "no change of this run needed more than its task and the join")
    }
}
