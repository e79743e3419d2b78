import HTTPTypes
import HummingbirdTesting
import RunwardenCore
import Testing

/// `GET /v1/runs` (SPEC §2): newest first, filters, paging.
@Suite("Run list")
struct RunListAPITests {
    /// Creates runs with the given workflows, oldest first, each in its own millisecond
    /// (ids have millisecond resolution); returns their ids in creation order.
    private func createRuns(_ client: any TestClientProtocol, workflows: [String]) async throws -> [String] {
        var ids: [String] = []
        for workflow in workflows {
            if !ids.isEmpty { try await Task.sleep(for: .milliseconds(3)) }
            ids.append(try await client.createRun(runBody(workflow: workflow, tasks: "[\(taskJSON("build"))]"))["id"]?.asString ?? "")
        }
        return ids
    }

    private func ids(_ page: JSONValue) -> [String] { page["items"]?.asArray?.compactMap { $0["id"]?.asString } ?? [] }

    @Test("The list answers newest first")
    func listIsNewestFirst() async throws {
        try await withApp { client in
            let created = try await createRuns(client, workflows: ["a", "b", "c"])
            let page = try await client.getJSON("/v1/runs")

            #expect(ids(page) == created.reversed())
            #expect(page["next_cursor"]?.isNull == true)
        }
    }

    @Test("A list item is the snapshot without tasks")
    func listItemsHaveNoTasks() async throws {
        try await withApp { client in
            let created = try await client.createRun(oneTaskRun)
            let item = try await client.getJSON("/v1/runs")["items"]?.asArray?.first
            var expected = created.objectMembers ?? []
            expected.removeAll { $0.key == "tasks" }

            #expect(item?["tasks"] == nil)
            #expect(item?.canonical == JSONValue.object(expected).canonical)
        }
    }

    @Test("The status filter keeps only runs in that status")
    func statusFilter() async throws {
        try await withApp { client in
            let created = try await createRuns(client, workflows: ["a", "b"])
            _ = try await client.send(.post, "/v1/runs/\(created[0])/cancel")
            let canceled = try await client.getJSON("/v1/runs?status=canceled")
            let queued = try await client.getJSON("/v1/runs?status=queued")

            #expect(ids(canceled) == [created[0]])
            #expect(ids(queued) == [created[1]])
        }
    }

    @Test("The workflow filter keeps only runs of that workflow")
    func workflowFilter() async throws {
        try await withApp { client in
            let created = try await createRuns(client, workflows: ["deploy", "test", "deploy"])
            let page = try await client.getJSON("/v1/runs?workflow=deploy")

            #expect(ids(page) == [created[2], created[0]])
        }
    }

    @Test("Both filters combine")
    func filtersCombine() async throws {
        try await withApp { client in
            let created = try await createRuns(client, workflows: ["deploy", "test", "deploy"])
            _ = try await client.send(.post, "/v1/runs/\(created[2])/cancel")
            let page = try await client.getJSON("/v1/runs?workflow=deploy&status=queued")

            #expect(ids(page) == [created[0]])
        }
    }

    @Test("limit and next_cursor page through every run exactly once, newest first")
    func limitAndCursorPage() async throws {
        try await withApp { client in
            let created = try await createRuns(client, workflows: ["a", "b", "c", "d", "e"])
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await client.getJSON("/v1/runs?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
                seen += ids(page)
                cursor = page["next_cursor"]?.asString
                pages += 1
            } while cursor != nil && pages < 10

            #expect(pages == 3)
            #expect(seen == created.reversed())
        }
    }

    @Test("A full page that ends exactly at the last run answers next_cursor null")
    func exactLastPageHasNoCursor() async throws {
        try await withApp { client in
            _ = try await createRuns(client, workflows: ["a", "b"])
            let page = try await client.getJSON("/v1/runs?limit=2")

            #expect(ids(page).count == 2)
            #expect(page["next_cursor"]?.isNull == true)
        }
    }

    @Test("limit above 500 is taken as 500, not refused")
    func limitAboveMaximumIsClamped() async throws {
        try await withApp { client in
            _ = try await createRuns(client, workflows: ["a", "b"])
            let response = try await client.send(.get, "/v1/runs?limit=1000")
            let page = try response.json()

            #expect(response.status == .ok)
            #expect(ids(page).count == 2)
        }
    }

    @Test("An unknown status filter answers 422 validation_failed naming status")
    func badStatusFilterIsRefused() async throws {
        try await withApp { client in
            let response = try await client.send(.get, "/v1/runs?status=done")
            let field = try response.errorObject()?["details"]?.asArray?.first?["field"]?.asString

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(field == "status")
        }
    }

    @Test("An empty list answers items [] and next_cursor null")
    func emptyList() async throws {
        try await withApp { client in
            let page = try await client.getJSON("/v1/runs")

            #expect(page["items"] == .array([]))
            #expect(page["next_cursor"]?.isNull == true)
        }
    }
}

/// `Idempotency-Key` on `POST /v1/runs` (SPEC §2 "Idempotency").
@Suite("Idempotent create")
struct IdempotencyAPITests {
    private func create(_ client: any TestClientProtocol, key: String, body: String) async throws -> TestResponse {
        try await client.send(.post, "/v1/runs", json: body, headers: [.idempotencyKey: key])
    }

    @Test("The same key with an equal body (members in another order) answers 200 with the same run and Idempotent-Replayed")
    func equalBodyReplays() async throws {
        try await withApp { client in
            let first = try await create(
                client, key: "key-1", body: #"{"workflow":"deploy","tasks":[{"name":"build","command":["make"]}],"metadata":{"a":1,"b":2}}"#)
            let second = try await create(
                client, key: "key-1",
                body: #"{ "metadata": {"b":2, "a":1}, "tasks": [{"command":["make"], "name":"build"}], "workflow": "deploy" }"#)
            let firstID = try first.json()["id"]
            let secondID = try second.json()["id"]
            let runs = try await client.getJSON("/v1/runs")

            #expect(first.status == .accepted)
            #expect(first.headers[.idempotentReplayed] == nil)
            #expect(second.status == .ok)
            #expect(second.headers[.idempotentReplayed] == "true")
            #expect(secondID == firstID)
            #expect(runs["items"]?.asArray?.count == 1)
        }
    }

    @Test("A replay answers the run as it is now")
    func replayAnswersCurrentSnapshot() async throws {
        try await withApp { client in
            let first = try await create(client, key: "key-1", body: oneTaskRun)
            let runID = try first.json()["id"]?.asString ?? ""
            _ = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let replay = try await create(client, key: "key-1", body: oneTaskRun)
            let snapshot = try replay.json()

            #expect(replay.status == .ok)
            #expect(snapshot["id"]?.asString == runID)
            #expect(snapshot["status"]?.asString == "canceled")
        }
    }

    @Test("The same key with a different body answers 422 idempotency_key_reused and creates nothing")
    func differentBodyIsRefused() async throws {
        try await withApp { client in
            _ = try await create(client, key: "key-1", body: oneTaskRun)
            let response = try await create(client, key: "key-1", body: runBody(workflow: "other", tasks: "[\(taskJSON("build"))]"))
            let runs = try await client.getJSON("/v1/runs")

            try expectError(response, .unprocessableContent, "idempotency_key_reused")
            #expect(runs["items"]?.asArray?.count == 1)
        }
    }

    @Test("Concurrent creates with the same key and body make one run")
    func concurrentCreatesWithOneKeyMakeOneRun() async throws {
        try await withApp { client in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask { try await client.send(.post, "/v1/runs", json: oneTaskRun, headers: [.idempotencyKey: "key-1"]).status.code }
                }
                var statuses: [Int] = []
                for try await status in group { statuses.append(status) }
                return statuses
            }
            let runs = try await client.getJSON("/v1/runs")

            #expect(statuses.sorted() == [200, 200, 200, 202])
            #expect(runs["items"]?.asArray?.count == 1)
        }
    }

    @Test("Different keys with equal bodies create two runs")
    func differentKeysCreateTwoRuns() async throws {
        try await withApp { client in
            let first = try await create(client, key: "key-1", body: oneTaskRun)
            let second = try await create(client, key: "key-2", body: oneTaskRun)
            let firstID = try first.json()["id"]
            let secondID = try second.json()["id"]

            #expect(second.status == .accepted)
            #expect(secondID != firstID)
        }
    }

    @Test("Creates without a key are never deduplicated")
    func noKeyNoDeduplication() async throws {
        try await withApp { client in
            _ = try await client.createRun(oneTaskRun)
            _ = try await client.createRun(oneTaskRun)
            let runs = try await client.getJSON("/v1/runs")

            #expect(runs["items"]?.asArray?.count == 2)
        }
    }

    @Test("The same key under the client token replays")
    func replayWithClientToken() async throws {
        try await withTokenApp { client in
            let headers: HTTPFields = [.idempotencyKey: "key-1"]
            let first = try await client.send(.post, "/v1/runs", json: oneTaskRun, token: Tokens.client, headers: headers)
            let second = try await client.send(.post, "/v1/runs", json: oneTaskRun, token: Tokens.client, headers: headers)
            let firstID = try first.json()["id"]
            let secondID = try second.json()["id"]

            #expect(second.status == .ok)
            #expect(second.headers[.idempotentReplayed] == "true")
            #expect(secondID == firstID)
        }
    }
}
