import Foundation
import HummingbirdTesting
import RunwardenCore
import Testing

/// `GET /metrics` (Prometheus text format): what an operator scrapes.
@Suite("Metrics")
struct MetricsTests {
    @Test("A finished run shows in the run and task gauges, the transitions, the run duration and the request and store latencies")
    func finishedRunIsCounted() async throws {
        try await withApp { client in
            let created = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            _ = try await client.send(.get, "/v1/runs/run_nope")
            let metrics = try await scrapeMetrics(client)

            #expect(created["status"]?.asString == "queued")
            #expect(metrics[#"runwarden_runs{status="succeeded"}"#] == 1)
            #expect(metrics[#"runwarden_runs{status="queued"}"#] == 0)
            #expect(metrics[#"runwarden_tasks{status="succeeded"}"#] == 1)
            #expect(metrics[#"runwarden_transitions_total{type="run.created"}"#] == 1)
            #expect(metrics[#"runwarden_transitions_total{type="task.succeeded"}"#] == 1)
            #expect(metrics[#"runwarden_transitions_total{type="run.succeeded"}"#] == 1)
            #expect(metrics[#"runwarden_run_duration_seconds_count{status="succeeded"}"#] == 1)
            #expect(metrics[#"runwarden_http_request_duration_seconds_count{method="POST",route="/v1/runs",status="202"}"#] == 1)
            #expect(metrics[#"runwarden_http_request_duration_seconds_count{method="GET",route="/v1/runs/{id}",status="404"}"#] == 1)
            #expect(metrics[#"runwarden_store_operation_duration_seconds_count{operation="report"}"#] == 2)
            #expect(metrics[#"runwarden_store_operation_duration_seconds_count{operation="claim"}"#] == 1)
        }
    }

    @Test("A parked long-poll shows as a run waiter, and is gone once it returns")
    func waitersAreCounted() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            async let waited = client.snapshot(runID, query: "?wait=10&version=1")
            try await waitUntilParked(client)
            let parked = try await scrapeMetrics(client)
            _ = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            _ = try await waited
            let after = try await scrapeMetrics(client)

            #expect(parked[#"runwarden_waiters{topic="run"}"#] == 1)
            #expect(after[#"runwarden_waiters{topic="run"}"#] == 0)
        }
    }

    @Test("Every line is a comment or `series value` in the text format, served as text/plain without a token")
    func textFormat() async throws {
        try await withTokenApp { client in
            let response = try await client.send(.get, "/metrics")
            let lines = response.text.split(separator: "\n")

            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(!lines.isEmpty)
            for line in lines where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                #expect(parts.count == 2 && Double(parts[1]) != nil, "not a sample line: \(line)")
                #expect(parts.first?.hasPrefix("runwarden_") == true, "\(line)")
            }
        }
    }
}
