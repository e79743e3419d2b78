import Testing
import RunwardenCore

@Suite("Events and runner protocol helpers")
struct EventAndRunnerProtocolTests {
    @Test func aCommittedEventRendersEverySpecFieldInOrder() {
        let draft = EventDraft(
            id: "evt_1", runID: "run_1", taskID: "task_1", type: "task.failed", status: "failed", previousStatus: "running",
            timestamp: t0, attempt: 2, error: RunError(TaskError(code: "exit_code", message: "exit 1")))
        let json = JSONValueEncoder.encode(RunEvent(Event(seq: 42, runSeq: 5, draft: draft)))
        #expect(
            json.objectMembers?.map(\.key) == [
                "id", "seq", "run_seq", "run_id", "task_id", "type", "status", "previous_status", "timestamp", "attempt",
                "error",
            ])
        #expect(json["seq"] == .int(42))
        #expect(json["run_seq"] == .int(5))
        #expect(json["timestamp"] == .string("2026-01-01T00:00:00.000Z"))
        #expect(json["attempt"] == .int(2))
        #expect(json["error"]?["retryable"] == .bool(false))
    }

    @Test func aRunEventHasNullTaskAttemptAndError() {
        let draft = EventDraft(
            id: "evt_1", runID: "run_1", taskID: nil, type: "run.created", status: "queued", previousStatus: nil,
            timestamp: t0, attempt: nil, error: nil)
        let json = JSONValueEncoder.encode(RunEvent(Event(seq: 1, runSeq: 1, draft: draft)))
        for key in ["task_id", "previous_status", "attempt", "error"] {
            #expect(json[key] == .null, "\(key) should be null")
        }
    }

    @Test func eventTypesAreNamedAfterTheirStatus() {
        #expect(EventType.run(.timedOut) == "run.timed_out")
        #expect(EventType.task(.canceling) == "task.canceling")
        #expect(EventType.runCreated == "run.created")
        #expect(EventType.taskRetrying == "task.retrying")
    }

    @Test func statusWordsAreTheSpecs() {
        #expect(RunStatus.allCases.map(\.rawValue) == ["queued", "running", "canceling", "succeeded", "failed", "canceled", "timed_out"])
        #expect(
            TaskStatus.allCases.map(\.rawValue) == [
                "pending", "queued", "dispatched", "running", "canceling", "succeeded", "failed", "canceled", "timed_out",
                "skipped",
            ])
        #expect(RunStatus.allCases.filter(\.isTerminal) == [.succeeded, .failed, .canceled, .timedOut])
        #expect(TaskStatus.allCases.filter(\.isTerminal) == [.succeeded, .failed, .canceled, .timedOut, .skipped])
        #expect(TaskStatus.allCases.filter(\.isActive) == [.dispatched, .running, .canceling])
    }

    @Test(arguments: [
        (TaskErrorCode.exitCode.rawValue, false), (TaskErrorCode.timeout.rawValue, false),
        (TaskErrorCode.launchFailed.rawValue, true), (TaskErrorCode.heartbeatLost.rawValue, true),
        (TaskErrorCode.canceled.rawValue, false), ("custom_code", false),
    ])
    func retryableTaskErrorCodesAreLaunchFailedAndHeartbeatLost(code: String, retryable: Bool) {
        #expect(TaskError(code: code, message: "m").retryable == retryable)
    }

    // MARK: Heartbeat verdicts and label matching

    enum HeartbeatCase: String, CaseIterable, CustomTestStringConvertible {
        case ownRunningTask, ownDispatchedTask, ownCancelingTask, otherRunnersTask, finishedTask, requeuedTask, unknownTask
        var testDescription: String { rawValue }
    }

    @Test(arguments: HeartbeatCase.allCases)
    func aHeartbeatTellsTheRunnerToStopEveryTaskItShouldNotBeRunning(_ situation: HeartbeatCase) throws {
        var s = Scenario([task("a", retries: 1), task("b")])
        var name: String? = "a"
        let mustStop: Bool
        switch situation {
        case .ownRunningTask:
            try s.start("a")
            mustStop = false
        case .ownDispatchedTask:
            try s.claim("a")
            mustStop = false
        case .ownCancelingTask:
            try s.start("a")
            try s.cancel()
            mustStop = true
        case .otherRunnersTask:
            try s.start("a", runner: "host-b")
            mustStop = true
        case .finishedTask:
            try s.start("a")
            try s.report("a", .succeeded)
            mustStop = true
        case .requeuedTask:
            try s.start("a")
            s.leaseExpired("a")
            mustStop = true
        case .unknownTask:
            name = nil
            mustStop = true
        }
        #expect(HeartbeatVerdict.mustStop(name.map { s[$0] }, runner: "host-a") == mustStop)
    }

    @Test(arguments: [
        (runner: ["linux", "gpu"], task: ["linux"], match: true),
        (runner: ["linux"], task: [], match: true),
        (runner: [], task: [], match: true),
        (runner: ["linux"], task: ["linux", "gpu"], match: false),
        (runner: [], task: ["linux"], match: false),
        (runner: ["Linux"], task: ["linux"], match: false),
    ])
    func aRunnerCanRunATaskWhenItHasEveryLabelTheTaskAsksFor(runner: [String], task labels: [String], match: Bool) {
        #expect(LabelMatch.runner(Set(runner), canRun: task("t", labels: labels)) == match)
    }
}
