import HummingbirdTesting
import RunwardenCore
import Testing

/// `GET /v1/runs/{id}/tasks` (SPEC §7): a run's tasks a page at a time, in run order.
@Suite("A run's tasks, paged")
struct RunTaskPageTests {
    static func names(_ page: JSONValue) -> [String] {
        guard case .array(let items)? = page["items"] else { return [] }
        return items.compactMap { $0["name"]?.asString }
    }

    @Test("pages follow run order to the end; status filters; bad cursors and statuses are 422; unknown runs 404")
    func pagesAndFilters() async throws {
        try await withApp { client in
            // a, b, c are queued; d and e wait on a (pending).
            let tasks = ["a", "b", "c"].map { taskJSON($0) } + ["d", "e"].map { taskJSON($0, extra: #""needs":["a"]"#) }
            let runID = try await client.createRun(runBody(tasks: "[" + tasks.joined(separator: ",") + "]"))["id"]?.asString ?? ""

            var seen: [String] = []
            var cursor: String?
            for _ in 0..<5 {
                let page = try await client.getJSON("/v1/runs/\(runID)/tasks?limit=2" + (cursor.map { "&cursor=" + $0 } ?? ""))
                seen += Self.names(page)
                cursor = page["next_cursor"]?.asString
                if cursor == nil { break }
            }
            #expect(seen == ["a", "b", "c", "d", "e"])

            let pending = try await client.getJSON("/v1/runs/\(runID)/tasks?status=pending")
            #expect(Self.names(pending) == ["d", "e"])
            #expect(pending["next_cursor"] == .null)
            let first = try await client.getJSON("/v1/runs/\(runID)/tasks?status=pending&limit=1")
            #expect(Self.names(first) == ["d"])
            guard case .array(let items)? = first["items"] else { throw RunTaskPageError.noItems }
            #expect(items.first?["blocked_by"]?["needs"] == .array([.string("a")]), "a task as in the snapshot")

            #expect(try await client.send(.get, "/v1/runs/\(runID)/tasks?status=done").status == .unprocessableContent)
            #expect(try await client.send(.get, "/v1/runs/\(runID)/tasks?cursor=task_nope").status == .unprocessableContent)
            #expect(try await client.send(.get, "/v1/runs/run_nope/tasks").status == .notFound)
        }
    }
}

private enum RunTaskPageError: Error { case noItems }
