import CoreMetrics
import Prometheus
import RunwardenCore
import RunwardenStore

/// What `/metrics` shows (Prometheus text format): recorded through swift-metrics with a
/// Prometheus factory of this server's own, so several servers in one process (the tests)
/// never share or double-count series, and nothing needs a process-wide bootstrap.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request and store latencies are mostly sub-millisecond; runs and deliveries are longer.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        factory.durationHistogramBuckets["runwarden_run_duration_seconds"] = [
            .seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(1800),
            .seconds(3600), .seconds(4 * 3600), .seconds(12 * 3600), .seconds(24 * 3600),
        ]
        self.factory = factory
    }

    /// One HTTP request, by matched route (never the raw path: ids would explode the series).
    func recordRequest(method: String, route: String, status: Int, duration: Duration) {
        CoreMetrics.Timer(
            label: "runwarden_http_request_duration_seconds",
            dimensions: [("method", method), ("route", route), ("status", String(status))], factory: factory
        ).record(duration: duration)
    }

    /// Task output that arrived (SPEC §9): bytes received in chunks, bytes new to the store
    /// (a chunk sent again is received but not stored twice), bytes dropped to keep the cap.
    func recordLog(received: Int, stored: Int, truncated: Int64) {
        Counter(label: "runwarden_log_bytes_received_total", factory: factory).increment(by: received)
        Counter(label: "runwarden_log_bytes_stored_total", factory: factory).increment(by: stored)
        Counter(label: "runwarden_log_bytes_truncated_total", factory: factory).increment(by: Int(clamping: truncated))
    }

    /// One store call made by the service (a transaction, including waiting for a connection).
    func recordStore(_ operation: String, duration: Duration) {
        CoreMetrics.Timer(label: "runwarden_store_operation_duration_seconds", dimensions: [("operation", operation)], factory: factory)
            .record(duration: duration)
    }

    /// Committed status changes — runs', tasks' and runners' (`runner.lost` among them: the
    /// lost-runner events of SPEC §8) — and the duration of each run that just ended.
    func recordCommitted(_ events: [Event], run: Run?) {
        for event in events {
            Counter(label: "runwarden_transitions_total", dimensions: [("type", event.draft.type)], factory: factory).increment()
            if let run, event.draft.taskID == nil, let status = RunStatus(rawValue: event.draft.status), status.isTerminal,
                let finished = run.state.finishedAt
            {
                CoreMetrics.Timer(label: "runwarden_run_duration_seconds", dimensions: [("status", status.rawValue)], factory: factory)
                    .record(duration: .milliseconds(finished.milliseconds - run.state.createdAt.milliseconds))
            }
        }
    }

    /// One webhook attempt: its outcome (`succeeded`, `retry`, `failed`) and how long it took.
    func recordDelivery(outcome: String, duration: Duration) {
        Counter(label: "runwarden_webhook_deliveries_total", dimensions: [("outcome", outcome)], factory: factory).increment()
        CoreMetrics.Timer(label: "runwarden_webhook_delivery_duration_seconds", factory: factory).record(duration: duration)
    }

    /// The gauges read at scrape time: runs, tasks and runners by status, parked waiters by topic.
    func exposition(counts: StatusCounts, runners: [RunnerStatus: Int], waiters: [String: Int]) -> [UInt8] {
        for status in RunnerStatus.allCases {
            Gauge(label: "runwarden_runners", dimensions: [("status", status.rawValue)], factory: factory)
                .record(runners[status, default: 0])
        }
        for status in RunStatus.allCases {
            Gauge(label: "runwarden_runs", dimensions: [("status", status.rawValue)], factory: factory)
                .record(counts.runs[status.rawValue, default: 0])
        }
        for status in TaskStatus.allCases {
            Gauge(label: "runwarden_tasks", dimensions: [("status", status.rawValue)], factory: factory)
                .record(counts.tasks[status.rawValue, default: 0])
        }
        for topic in ChangeHub.topicKinds {
            Gauge(label: "runwarden_waiters", dimensions: [("topic", topic)], factory: factory).record(waiters[topic, default: 0])
        }
        return registry.emitToBuffer()
    }
}

extension CoreMetrics.Timer {
    func record(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
