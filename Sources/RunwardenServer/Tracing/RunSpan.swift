import RunwardenCore
import RunwardenStore

/// A finished span of a run's trace (SPEC §11): the run's root span, or one per task attempt.
/// Built whole from a committed change — ids from the run's stored `RunTrace`, times from the
/// change — so it does not matter which node started the run or claimed the attempt.
struct RunSpan: Sendable {
    var traceID: String
    var spanID: String
    var parentSpanID: String?
    var name: String
    var start: Timestamp
    var end: Timestamp
    var attributes: [(key: String, value: Attribute)]
    /// The run or attempt did not succeed: the span's status is an error.
    var failed: Bool

    enum Attribute: Sendable {
        case string(String)
        case int(Int)
    }

    /// The spans a committed change finishes: one per attempt it ended, and the run's root span
    /// when it ended the run. None for a run without a trace, or whose caller did not sample it.
    static func finished<Value>(by committed: Committed<Value>) -> [RunSpan] {
        let run = committed.record.run
        guard let trace = run.spec.trace, trace.sampled else { return [] }
        var spans = committed.endedAttempts.map { attempt in
            RunSpan(
                traceID: trace.traceID, spanID: trace.attemptSpanID(taskID: attempt.taskID, attempt: attempt.attempt),
                parentSpanID: trace.spanID, name: "task \(attempt.taskName)", start: attempt.claimedAt, end: attempt.endedAt,
                attributes: [
                    ("runwarden.run_id", .string(run.id)), ("runwarden.task_id", .string(attempt.taskID)),
                    ("runwarden.task_name", .string(attempt.taskName)), ("runwarden.attempt", .int(attempt.attempt)),
                    ("runwarden.status", .string(attempt.status)),
                ],
                failed: attempt.status != TaskStatus.succeeded.rawValue)
        }
        let endsRun = committed.events.contains { event in
            event.draft.taskID == nil && RunStatus(rawValue: event.draft.status)?.isTerminal == true
        }
        if endsRun {
            spans.append(
                RunSpan(
                    traceID: trace.traceID, spanID: trace.spanID, parentSpanID: trace.parentSpanID, name: "run \(run.spec.workflow)",
                    start: run.state.createdAt, end: run.state.finishedAt ?? run.state.updatedAt,
                    attributes: [
                        ("runwarden.run_id", .string(run.id)), ("runwarden.workflow", .string(run.spec.workflow)),
                        ("runwarden.status", .string(run.status.rawValue)), ("runwarden.run_attempt", .int(run.runAttempt)),
                    ],
                    failed: run.status != .succeeded))
        }
        return spans
    }
}
