import Foundation
import HTTPTypes
import HummingbirdTesting
import RunwardenCore
import Testing

/// SPEC §10 "Re-run" over HTTP: `POST /v1/runs/{id}/rerun`.
@Suite("Re-run over the API")
struct RerunAPITests {
    /// build → test → ship: build succeeds, test fails, ship is skipped. Returns the run id.
    static func failedRun(_ client: any TestClientProtocol) async throws -> String {
        let tasks = "[\(taskJSON("build")),\(taskJSON("test", extra: #""needs":["build"]"#)),\(taskJSON("ship", extra: #""needs":["test"]"#))]"
        let runID = try await client.createRun(runBody(tasks: tasks))["id"]?.asString ?? ""
        let build = try await client.claimTaskID()
        try await client.reportOK(build, reportBody("succeeded", #""exit_code":0,"output_ref":"s3://b/1""#))
        let test = try await client.claimTaskID()
        try await client.reportOK(test, reportBody("failed", #""exit_code":3"#))
        #expect(try await client.snapshot(runID)["status"]?.asString == "failed")
        return runID
    }

    @Test("A re-run of the failed tasks is a new linked run; the earlier run lists it")
    func rerunFailedCreatesALinkedRun() async throws {
        try await withApp { client in
            let earlierID = try await Self.failedRun(client)
            let before = try await client.snapshot(earlierID)
            let response = try await client.send(.post, "/v1/runs/\(earlierID)/rerun", json: #"{"tasks":"failed"}"#)
            let rerun = try response.json()
            let rerunID = rerun["id"]?.asString ?? ""
            let after = try await client.snapshot(earlierID)
            let build = rerun.task(named: "build")

            #expect(response.status == .accepted)
            #expect(response.headers[.location] == "/v1/runs/\(rerunID)")
            #expect(rerunID != earlierID)
            #expect(rerun["rerun_of"]?.asString == earlierID)
            #expect(rerun["run_attempt"]?.asInt == 2)
            #expect(rerun["status"]?.asString == "queued")
            #expect(build?["status"]?.asString == "succeeded")
            #expect(build?["reused_from"]?.asString == before.task(named: "build")?["id"]?.asString)
            #expect(build?["runner"]?.asString == "host-a")
            #expect(build?["output_ref"]?.asString == "s3://b/1")
            #expect(build?["finished_at"] == before.task(named: "build")?["finished_at"])
            #expect(rerun.task(named: "test")?["status"]?.asString == "queued")
            #expect(rerun.task(named: "test")?["reused_from"]?.isNull == true)
            #expect(rerun.task(named: "ship")?["blocked_by"]?["needs"] == .array([.string("test")]))
            #expect(before["reruns"] == .array([]))
            #expect(before["rerun_of"]?.isNull == true)
            #expect(after["reruns"] == .array([.string(rerunID)]))
            #expect(after["status"]?.asString == "failed")
            #expect(after["version"]?.asInt == (before["version"]?.asInt ?? 0) + 1)
            #expect(try await client.getJSON("/v1/runs/\(rerunID)/events").eventTypes == ["run.created"])
        }
    }

    @Test("A re-run runs only the failed task and what needs it, and can end succeeded")
    func rerunFinishesWithTheReusedTasks() async throws {
        try await withApp { client in
            let earlierID = try await Self.failedRun(client)
            let rerunID = try await client.send(.post, "/v1/runs/\(earlierID)/rerun").json()["id"]?.asString ?? ""
            var claimed: [String] = []
            while let answer = try await client.claim() {
                let task = answer["task"]
                claimed.append(task?["name"]?.asString ?? "")
                try await client.reportOK(task?["id"]?.asString ?? "", reportBody("succeeded", #""exit_code":0"#))
            }
            let snapshot = try await client.snapshot(rerunID)

            #expect(claimed == ["test", "ship"])
            #expect(snapshot["status"]?.asString == "succeeded")
            #expect(snapshot["progress"]?["succeeded"]?.asInt == 3)
        }
    }

    @Test("Idempotency-Key: the same key and body answer the same re-run; another run's is a reuse")
    func rerunHonoursIdempotencyKeys() async throws {
        try await withApp { client in
            let earlierID = try await Self.failedRun(client)
            let key: HTTPFields = [.idempotencyKey: "rerun-1"]
            let first = try await client.send(.post, "/v1/runs/\(earlierID)/rerun", json: #"{"tasks":["test"]}"#, headers: key)
            let again = try await client.send(.post, "/v1/runs/\(earlierID)/rerun", json: #"{"tasks": ["test"]}"#, headers: key)
            let otherBody = try await client.send(.post, "/v1/runs/\(earlierID)/rerun", json: #"{"tasks":"failed"}"#, headers: key)
            let firstID = try first.json()["id"]?.asString ?? ""

            #expect(first.status == .accepted)
            #expect(again.status == .ok)
            #expect(again.headers[.idempotentReplayed] == "true")
            #expect(try again.json()["id"]?.asString == firstID)
            try expectError(otherBody, .unprocessableContent, "idempotency_key_reused")
            #expect(try await client.snapshot(earlierID)["reruns"] == .array([.string(firstID)]))
        }
    }

    @Test("An unfinished run is 409 run_not_terminal and nothing is created")
    func rerunOfAnUnfinishedRunIsRefused() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let response = try await client.send(.post, "/v1/runs/\(runID)/rerun", json: #"{"tasks":"failed"}"#)

            try expectError(response, .conflict, "run_not_terminal")
            #expect(try await client.getJSON("/v1/runs")["items"]?.asArray?.count == 1)
            #expect(try await client.snapshot(runID)["version"]?.asInt == 1)
        }
    }

    @Test("Unknown task names are 422 naming each; a bad selection and an unknown run are refused")
    func badRerunRequestsAreRefused() async throws {
        try await withApp { client in
            let earlierID = try await Self.failedRun(client)
            let unknown = try await client.send(.post, "/v1/runs/\(earlierID)/rerun", json: #"{"tasks":["test","nope","zilch"]}"#)
            let details = try unknown.errorObject()?["details"]?.asArray ?? []
            let badShape = try await client.send(.post, "/v1/runs/\(earlierID)/rerun", json: #"{"tasks":7}"#)
            let missing = try await client.send(.post, "/v1/runs/run_01HZZZZZZZZZZZZZZZZZZZZZZZ/rerun", json: #"{"tasks":"failed"}"#)

            try expectError(unknown, .unprocessableContent, "validation_failed")
            #expect(details.compactMap { $0["field"]?.asString } == ["tasks[1]", "tasks[2]"])
            #expect(details.first?["message"]?.asString?.contains("\"nope\"") == true)
            try expectError(badShape, .unprocessableContent, "validation_failed")
            try expectError(missing, .notFound, "run_not_found")
            #expect(try await client.snapshot(earlierID)["reruns"] == .array([]))
            #expect(try await client.getJSON("/v1/runs")["items"]?.asArray?.count == 1)
        }
    }
}
