import Foundation
import HummingbirdTesting
import RunwardenCore
import Testing

/// SPEC §10 "Approval" over HTTP: `POST /v1/tasks/{id}/approve` and `/reject`.
@Suite("Approval tasks over the API")
struct ApprovalAPITests {
    static func parsed(_ text: String) -> JSONValue? { try? JSONValue.parse(Data(text.utf8)) }

    static let gatedRun = runBody(
        tasks: #"[{"name":"gate","approval":{"timeout_s":600}},{"name":"deploy","command":["make","deploy"],"needs":["gate"]}]"#)

    @Test("A waiting approval task is queued, blocked by approval, announced to webhooks and never claimed")
    func anApprovalTaskWaitsForAPerson() async throws {
        try await withApp { client in
            let hook = try await client.send(.post, "/v1/webhooks", json: #"{"url":"http://127.0.0.1:9/hook","events":["task.queued"]}"#).json()
            let run = try await client.createRun(Self.gatedRun)
            let gate = run.task(named: "gate")
            let deliveries = try await client.getJSON("/v1/webhooks/\(hook["id"]?.asString ?? "")/deliveries")
            let events = try await client.getJSON("/v1/runs/\(run["id"]?.asString ?? "")/events")

            #expect(gate?["status"]?.asString == "queued")
            #expect(gate?["blocked_by"] == Self.parsed(#"{"approval":true}"#))
            // Compared canonically: a parsed object's member order is not the order written.
            #expect(gate?["approval"]?.canonical == Self.parsed(#"{"approved_by":null,"rejected_by":null,"comment":null,"decided_at":null}"#)?.canonical)
            #expect(run.task(named: "deploy")?["approval"] == nil)
            #expect(events.eventTypes == ["run.created", "task.queued"])
            #expect(deliveries["items"]?.asArray?.compactMap { $0["type"]?.asString } == ["task.queued"])
            #expect(try await client.claim() == nil)
        }
    }

    @Test("Approve with a comment: the task succeeds, keeps who and the comment, and its event too; deploy is claimable")
    func approveReleasesTheRun() async throws {
        try await withApp { client in
            let run = try await client.createRun(Self.gatedRun)
            let gateID = run.task(named: "gate")?["id"]?.asString ?? ""
            let response = try await client.send(.post, "/v1/tasks/\(gateID)/approve", json: #"{"comment":"ship it"}"#)
            let task = try response.json()
            let events = try await client.getJSON("/v1/runs/\(run["id"]?.asString ?? "")/events")
            let decided = events["events"]?.asArray?.first { $0["type"]?.asString == "task.succeeded" }

            #expect(response.status == .ok)
            #expect(task["status"]?.asString == "succeeded")
            #expect(task["run_id"] == run["id"])
            #expect(task["approval"]?["approved_by"]?.asString == "open")
            #expect(task["approval"]?["comment"]?.asString == "ship it")
            #expect(decided?["approval"]?.canonical == task["approval"]?.canonical)   // member order is not compared
            #expect(try await client.claim()?["task"]?["name"]?.asString == "deploy")
        }
    }

    @Test("Reject fails the task with rejected and the run with it")
    func rejectFailsTheRun() async throws {
        try await withApp { client in
            let run = try await client.createRun(Self.gatedRun)
            let gateID = run.task(named: "gate")?["id"]?.asString ?? ""
            let task = try await client.send(.post, "/v1/tasks/\(gateID)/reject").json()
            let snapshot = try await client.snapshot(run["id"]?.asString ?? "")

            #expect(task["status"]?.asString == "failed")
            #expect(task["error"]?["code"]?.asString == "rejected")
            #expect(task["approval"]?["rejected_by"]?.asString == "open")
            #expect(snapshot["status"]?.asString == "failed")
            #expect(snapshot.task(named: "deploy")?["status"]?.asString == "skipped")
        }
    }

    @Test("Deciding anything but a waiting approval task is 409 task_not_awaiting_approval and changes nothing")
    func onlyWaitingApprovalsCanBeDecided() async throws {
        try await withApp { client in
            let run = try await client.createRun(Self.gatedRun)
            let runID = run["id"]?.asString ?? ""
            let gateID = run.task(named: "gate")?["id"]?.asString ?? ""
            let deployID = run.task(named: "deploy")?["id"]?.asString ?? ""
            let notApproval = try await client.send(.post, "/v1/tasks/\(deployID)/approve")
            let versionBefore = try await client.snapshot(runID)["version"]
            let badComment = try await client.send(.post, "/v1/tasks/\(gateID)/approve", json: #"{"comment":7}"#)
            let unknown = try await client.send(.post, "/v1/tasks/task_01HZZZZZZZZZZZZZZZZZZZZZZZ/approve")
            _ = try await client.send(.post, "/v1/tasks/\(gateID)/approve")
            let twice = try await client.send(.post, "/v1/tasks/\(gateID)/reject")

            try expectError(notApproval, .conflict, "task_not_awaiting_approval")
            try expectError(badComment, .unprocessableContent, "validation_failed")
            try expectError(unknown, .notFound, "task_not_found")
            try expectError(twice, .conflict, "task_not_awaiting_approval")
            #expect(versionBefore?.asInt == 1)
            #expect(try await client.snapshot(runID).task(named: "gate")?["status"]?.asString == "succeeded")
        }
    }

    @Test("An approval task with a command is 422 naming the command")
    func approvalWithACommandIsRefused() async throws {
        try await withApp { client in
            let response = try await client.send(
                .post, "/v1/runs", json: runBody(tasks: #"[{"name":"gate","approval":{},"command":"make"}]"#))

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(try response.errorObject()?["details"]?.asArray?.first?["field"]?.asString == "tasks[0].command")
        }
    }
}

extension ApprovalAPITests {
    @Test("A per-runner token may approve or reject and its id is recorded; the shared runner token may not")
    func perRunnerTokenDecides() async throws {
        try await withTokenApp { client in
            let created = try await client.send(.post, "/v1/runner-tokens", json: #"{"description":"release bot"}"#, token: Tokens.client)
            let token = try created.json()
            let tokenID = try #require(token["id"]?.asString)
            let secret = try #require(token["token"]?.asString)
            let approved = try await client.createRun(Self.gatedRun, token: Tokens.client)
            let rejected = try await client.createRun(Self.gatedRun, token: Tokens.client)
            let approvedGate = approved.task(named: "gate")?["id"]?.asString ?? ""
            let rejectedGate = rejected.task(named: "gate")?["id"]?.asString ?? ""

            let shared = try await client.send(.post, "/v1/tasks/\(approvedGate)/approve", token: Tokens.runner)
            try expectError(shared, .forbidden, "forbidden")
            let approve = try await client.send(.post, "/v1/tasks/\(approvedGate)/approve", json: #"{"comment":"bot says yes"}"#, token: secret)
            let reject = try await client.send(.post, "/v1/tasks/\(rejectedGate)/reject", token: secret)
            let events = try await client.getJSON("/v1/runs/\(approved["id"]?.asString ?? "")/events", token: Tokens.client)

            #expect(approve.status == .ok, "\(approve.text)")
            #expect(try approve.json()["approval"]?["approved_by"]?.asString == tokenID)
            #expect(try reject.json()["approval"]?["rejected_by"]?.asString == tokenID)
            #expect(events["events"]?.asArray?.first { $0["type"]?.asString == "task.succeeded" }?["approval"]?["approved_by"]?.asString == tokenID)
            #expect(try await client.send(.delete, "/v1/runner-tokens/\(tokenID)", token: Tokens.client).status == .noContent)
            let revoked = try await client.send(.post, "/v1/tasks/\(rejectedGate)/approve", token: secret)
            try expectError(revoked, .unauthorized, "unauthorized")
        }
    }
}
