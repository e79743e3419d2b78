import Foundation
import HummingbirdTesting
import RunwardenCore
import Testing

/// SPEC §10: `POST /v1/runs/cancel` and the run-list filters over HTTP.
@Suite("Bulk cancel and run-list filters over the API")
struct BulkCancelAPITests {
    static func run(env: String) -> String { runBody(tasks: "[\(taskJSON("build"))]", extra: #""metadata":{"env":"\#(env)"}"#) }

    @Test("A bulk cancel by metadata cancels exactly the unfinished matching runs and counts them")
    func bulkCancelByMetadata() async throws {
        try await withApp { client in
            let prodA = try await client.createRun(Self.run(env: "prod"))["id"]?.asString ?? ""
            let prodB = try await client.createRun(Self.run(env: "prod"))["id"]?.asString ?? ""
            let staging = try await client.createRun(Self.run(env: "staging"))["id"]?.asString ?? ""
            _ = try await client.send(.post, "/v1/runs/\(prodA)/cancel")
            let response = try await client.send(.post, "/v1/runs/cancel", json: #"{"metadata":{"env":"prod"}}"#)

            #expect(response.status == .accepted)
            #expect(try response.json() == .object([.init("canceled", .int(1))]))
            #expect(try await client.snapshot(prodB)["status"]?.asString == "canceled")
            #expect(try await client.snapshot(staging)["status"]?.asString == "queued")
        }
    }

    @Test("A bulk cancel without a filter, or with a bad one, is 422 and cancels nothing")
    func bulkCancelNeedsAFilter() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            for body in [#"{}"#, #"{"status":["nope"]}"#, #"{"created_before":"yesterday"}"#, #"{"metadata":{"env":1}}"#, #"{"everything":true}"#] {
                let response = try await client.send(.post, "/v1/runs/cancel", json: body)
                try expectError(response, .unprocessableContent, "validation_failed")
            }
            #expect(try await client.snapshot(runID)["status"]?.asString == "queued")
        }
    }

    @Test("A bulk cancel by status and created_before leaves newer runs alone")
    func bulkCancelByStatusAndAge() async throws {
        try await withApp { client in
            let oldRun = try await client.createRun(oneTaskRun)
            let old = oldRun["id"]?.asString ?? ""
            let oldCreated = try #require(Timestamp(iso8601: oldRun["created_at"]?.asString ?? ""))
            let cutoff = Timestamp(milliseconds: oldCreated.milliseconds + 1)
            // Runs created in the same millisecond as the old one are older than the cutoff too.
            var sameMillisecond: [String] = []
            var new = ""
            while new.isEmpty {
                let run = try await client.createRun(oneTaskRun)
                let created = Timestamp(iso8601: run["created_at"]?.asString ?? "") ?? oldCreated
                if created >= cutoff { new = run["id"]?.asString ?? "" } else { sameMillisecond.append(run["id"]?.asString ?? "") }
            }
            let response = try await client.send(.post, "/v1/runs/cancel", json: #"{"status":["queued"],"created_before":"\#(cutoff.iso8601)"}"#)

            #expect(try response.json()["canceled"]?.asInt == 1 + sameMillisecond.count)
            #expect(try await client.snapshot(old)["status"]?.asString == "canceled")
            #expect(try await client.snapshot(new)["status"]?.asString == "queued")
        }
    }

    @Test("GET /v1/runs filters by metadata.KEY, created_after and created_before; a bad timestamp is 422")
    func listFilters() async throws {
        try await withApp { client in
            let prod = try await client.createRun(Self.run(env: "prod"))
            _ = try await client.createRun(Self.run(env: "staging"))
            let created = prod["created_at"]?.asString ?? ""
            let byMetadata = try await client.getJSON("/v1/runs?metadata.env=prod")
            let after = try await client.getJSON("/v1/runs?created_after=\(created)&metadata.env=staging")
            let before = try await client.getJSON("/v1/runs?created_before=\(created)")
            let bad = try await client.send(.get, "/v1/runs?created_after=soon")

            #expect(byMetadata["items"]?.asArray?.compactMap { $0["id"]?.asString } == [prod["id"]?.asString ?? ""])
            #expect(after["items"]?.asArray?.count == 1)
            #expect(before["items"]?.asArray?.count == 0)
            try expectError(bad, .unprocessableContent, "validation_failed")
        }
    }
}
