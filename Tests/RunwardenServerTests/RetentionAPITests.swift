import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import Testing

/// `--retention` end to end (SPEC §7): a server whose retention is shorter than the test
/// compacts a finished run on its own; the run still answers, its events answer 410.
@Suite("Retention over HTTP")
struct RetentionAPITests {
    @Test("a finished run is compacted: its snapshot stays with compacted and tasks, its timeline and old cursors answer 410")
    func finishedRunsAreCompacted() async throws {
        try await withApp(setup: .live, { $0.retention = .milliseconds(1) }) { client in
            let finished = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            try await client.reportOK(taskID, reportBody("succeeded"))
            let going = try await client.createRun(runBody(tasks: "[\(taskJSON("waits", extra: #""labels":["nobody"]"#))]"))["id"]?
                .asString ?? ""

            // The retention service passes every second; poll the snapshot for its work.
            let deadline = ContinuousClock.now + .seconds(15)
            var snapshot = try await client.snapshot(finished)
            while snapshot["compacted"] == nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                snapshot = try await client.snapshot(finished)
            }
            #expect(snapshot["compacted"]?.asBool == true)
            #expect(snapshot["status"]?.asString == "succeeded")
            #expect(snapshot["tasks"]?.asArray?.first?["status"]?.asString == "succeeded", "the final snapshot keeps its tasks")
            #expect(try await client.snapshot(going)["compacted"] == nil, "a run that has not finished is not compacted")
            #expect(try await client.snapshot(finished, query: "?tasks=false")["compacted"]?.asBool == true)

            try expectError(try await client.send(.get, "/v1/runs/\(finished)/events"), .gone, "events_expired")
            try expectError(try await client.send(.get, "/v1/runs/\(finished)/stream"), .gone, "events_expired")
            let expired = try await client.send(.get, "/v1/events?after=1")
            try expectError(expired, .gone, "cursor_expired")
            let details = try expired.errorObject()?["details"]?.asArray ?? []
            #expect(details.first?["field"]?.asString == "after")
            #expect(details.first?["message"]?.asString?.hasPrefix("oldest available seq is ") == true)

            // From the start: what is kept, the unfinished run's event.
            let kept = try await client.send(.get, "/v1/events?after=0")
            #expect(kept.status == .ok)
            #expect(try kept.json()["events"]?.asArray?.compactMap { $0["run_id"]?.asString } == [going])
            #expect(try await client.send(.get, "/v1/runs/\(going)/events").status == .ok)
        }
    }
}
