import Foundation
import HummingbirdTesting
import RunwardenCore
import Testing

/// SPEC §10 "Concurrency" over HTTP: the create body's `concurrency`, the run-level
/// `blocked_by`, and admission when a holder ends.
@Suite("Concurrency keys over the API")
struct ConcurrencyAPITests {
    static func keyedRun(_ name: String, onConflict: String = "queue", limit: Int = 1) -> String {
        runBody(
            workflow: name, tasks: "[\(taskJSON("deploy"))]",
            extra: #""concurrency":{"key":"deploy-prod","limit":\#(limit),"on_conflict":"\#(onConflict)"}"#)
    }

    @Test("A run past the limit is queued with blocked_by naming the holder, in its snapshot and in the run list")
    func blockedRunShowsItsHolder() async throws {
        try await withApp { client in
            let first = try await client.createRun(Self.keyedRun("first"))
            let second = try await client.createRun(Self.keyedRun("second"))
            let firstID = first["id"]?.asString ?? ""
            let secondID = second["id"]?.asString ?? ""
            // Compared canonically: a parsed object's member order is not the written one.
            let expected = JSONValue.object([.init("concurrency", .string("deploy-prod")), .init("held_by", .array([.string(firstID)]))])
                .canonical

            #expect(first["blocked_by"] == .null)
            #expect(first["concurrency"]?["on_conflict"]?.asString == "queue")
            #expect(second["status"]?.asString == "queued")
            #expect(second["blocked_by"]?.canonical == expected)
            #expect(second.task(named: "deploy")?["status"]?.asString == "pending")
            #expect(try await client.snapshot(secondID)["blocked_by"]?.canonical == expected)
            #expect(try await client.snapshot(secondID, query: "?tasks=false")["blocked_by"]?.canonical == expected)
            let items = try await client.getJSON("/v1/runs")["items"]?.asArray ?? []
            #expect(items.first { $0["id"]?.asString == secondID }?["blocked_by"]?.canonical == expected)
            #expect(items.first { $0["id"]?.asString == firstID }?["blocked_by"] == .null)
        }
    }

    @Test("When the holder ends, the waiting run's task is queued with a task.queued event and claimable")
    func holderEndAdmitsTheNext() async throws {
        try await withApp { client in
            let hook = try await client.send(.post, "/v1/webhooks", json: #"{"url":"http://127.0.0.1:9/hook","events":["task.queued"]}"#).json()
            let first = try await client.createRun(Self.keyedRun("first"))
            let second = try await client.createRun(Self.keyedRun("second"))
            let secondID = second["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            #expect(try await client.claim(runner: "host-b") == nil)
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))

            let admitted = try await client.snapshot(secondID)
            let events = try await client.getJSON("/v1/runs/\(secondID)/events")
            let deliveries = try await client.getJSON("/v1/webhooks/\(hook["id"]?.asString ?? "")/deliveries")
            #expect(try await client.snapshot(first["id"]?.asString ?? "")["status"]?.asString == "succeeded")
            #expect(admitted["blocked_by"] == .null)
            #expect(admitted.task(named: "deploy")?["status"]?.asString == "queued")
            #expect(events.eventTypes == ["run.created", "task.queued"])
            #expect(deliveries["items"]?.asArray?.compactMap { $0["run_id"]?.asString } == [secondID])
            let claimed = try await client.claim(runner: "host-b")
            #expect(claimed?["task"]?["run_id"]?.asString == secondID)
            #expect(claimed?["task"]?["priority"]?.asInt == 0)
        }
    }

    @Test("cancel_running cancels the older run; the newer one starts once it has ended")
    func cancelRunningCancelsTheOlder() async throws {
        try await withApp { client in
            let older = try await client.createRun(Self.keyedRun("older"))
            let olderID = older["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            let newer = try await client.createRun(Self.keyedRun("newer", onConflict: "cancel_running"))
            let newerID = newer["id"]?.asString ?? ""

            #expect(try await client.snapshot(olderID)["status"]?.asString == "canceling")
            #expect(newer["blocked_by"]?["held_by"] == .array([.string(olderID)]))
            try await client.reportOK(taskID, reportBody("canceled"))
            #expect(try await client.snapshot(olderID)["status"]?.asString == "canceled")
            #expect(try await client.claim(runner: "host-b")?["task"]?["run_id"]?.asString == newerID)
        }
    }

    @Test("A bad concurrency is 422 naming the field, and creates nothing")
    func badConcurrencyIs422() async throws {
        try await withApp { client in
            for (concurrency, field) in [
                (#"{"key":"k","limit":0}"#, "concurrency.limit"),
                (#"{"key":""}"#, "concurrency.key"),
                (#"{"key":"\#(String(repeating: "k", count: 201))"}"#, "concurrency.key"),
                (#"{"key":"k","on_conflict":"replace"}"#, "concurrency.on_conflict"),
            ] {
                let response = try await client.send(
                    .post, "/v1/runs", json: runBody(tasks: "[\(taskJSON("build"))]", extra: #""concurrency":\#(concurrency)"#))
                try expectError(response, .unprocessableContent, "validation_failed")
                #expect(try response.errorObject()?["details"]?.asArray?.compactMap { $0["field"]?.asString } == [field])
            }
            #expect(try await client.getJSON("/v1/runs")["items"]?.asArray?.isEmpty == true)
        }
    }
}
