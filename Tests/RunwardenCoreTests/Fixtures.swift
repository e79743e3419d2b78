import Foundation
import Testing
import RunwardenCore

/// 2026-01-01T00:00:00.000Z — every scenario starts here.
let t0 = Timestamp(milliseconds: 1_767_225_600_000)

/// A task spec with defaults that keep test tables short.
func task(
    _ name: String, needs: [String] = [], workspace: String? = nil, timeout: Int? = nil, retries: Int = 0,
    allowFailure: Bool = false, labels: [String] = []
) -> TaskSpec {
    TaskSpec(
        name: name, command: .argv(["make", name]), workspace: workspace, needs: needs, timeoutSeconds: timeout,
        retries: retries, allowFailure: allowFailure, labels: labels)
}

/// The id a scenario gives the task named `name` (readable instead of random).
func taskID(_ name: String) -> String { "task_" + name }

/// A run being driven through transitions the way the store does it: load, apply one
/// `RunChange`, store `committed`. The clock moves one second before each change.
struct Scenario {
    var run: Run
    var now: Timestamp
    /// Events of the last committed change, and of every change so far (including `run.created`).
    var lastEvents: [EventDraft] = []
    var allEvents: [EventDraft]

    init(_ tasks: [TaskSpec], timeout: Int? = nil, metadata: JSONValue? = nil) {
        let definition = RunDefinition(run: RunSpec(workflow: "deploy", timeoutSeconds: timeout, metadata: metadata), tasks: tasks)
        let created = Run.create(
            definition, id: "run_1", taskIDs: tasks.map { taskID($0.name) }, eventID: "evt_created", now: t0)
        run = created.run
        now = t0
        allEvents = [created.event]
    }

    /// Applies one change and commits it, unless `body` throws (then nothing is stored).
    @discardableResult
    mutating func apply<T, E: Error>(advance seconds: Int = 1, _ body: (inout RunChange) throws(E) -> T) throws(E) -> T {
        now = now.adding(seconds: seconds)
        var change = RunChange(run, now: now)
        let result = try body(&change)
        run = change.committed
        lastEvents = change.events
        allEvents += change.events
        return result
    }

    mutating func claim(_ name: String, runner: String = "host-a") throws(TransitionError) {
        try apply { (change: inout RunChange) throws(TransitionError) in try change.claim(taskID: taskID(name), runner: runner) }
    }

    @discardableResult
    mutating func report(_ name: String, _ report: StatusReport, runner: String? = "host-a") throws(TransitionError) -> Bool {
        try apply { (change: inout RunChange) throws(TransitionError) -> Bool in
            try change.report(taskID: taskID(name), report, runner: runner)
        }
    }

    @discardableResult
    mutating func report(_ name: String, _ status: TaskStatus, exitCode: Int? = nil, runner: String? = "host-a") throws(TransitionError) -> Bool {
        try report(name, StatusReport(status: status, exitCode: exitCode), runner: runner)
    }

    /// Claims and starts a task.
    mutating func start(_ name: String, runner: String = "host-a") throws(TransitionError) {
        try claim(name, runner: runner)
        try report(name, .running, runner: runner)
    }

    mutating func cancel() throws(TransitionError) {
        try apply { (change: inout RunChange) throws(TransitionError) in try change.cancel() }
    }

    mutating func runTimedOut() { apply { $0.runTimedOut() } }
    mutating func taskTimedOut(_ name: String) { apply { $0.taskTimedOut(taskID: taskID(name)) } }
    mutating func leaseExpired(_ name: String) { apply { $0.leaseExpired(taskID: taskID(name)) } }

    subscript(name: String) -> RunTask { run.tasks[run.taskIndex(name: name)!] }
    func status(_ name: String) -> TaskStatus { self[name].status }
    var version: Int { run.state.version }
    var lastTypes: [String] { lastEvents.map(\.type) }
}

extension StatusReport {
    static func at(_ status: TaskStatus, _ timestamp: Timestamp?, attempt: Int? = nil) -> StatusReport {
        StatusReport(status: status, attempt: attempt, timestamp: timestamp)
    }
}

/// Parses JSON text written in a test; a typo in the test itself fails loudly.
func json(_ text: String) -> JSONValue {
    do {
        return try JSONValue.parse(Data(text.utf8))
    } catch {
        Issue.record("test JSON does not parse: \(text)")
        return .null
    }
}
