import HummingbirdTesting
import RunwardenCore
import Testing

/// Long-polls (SPEC §2): `?wait=` on a snapshot, a claim and the timelines returns as soon as
/// something changes, and when the wait runs out answers what there is. Every wait is bounded.
@Suite("Long-polling")
struct LongPollTests {
    @Test("A snapshot long-poll returns as soon as a concurrent request changes the run")
    func snapshotWakesOnChange() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let start = ContinuousClock.now
            async let waited = client.snapshot(runID, query: "?wait=10&version=1")
            try await waitUntilParked(client)
            _ = try await client.claimTaskID()
            let snapshot = try await waited
            let elapsed = seconds(since: start)

            #expect((snapshot["version"]?.asInt ?? 0) > 1)
            #expect(snapshot["status"]?.asString == "running")
            #expect(elapsed < 8, "the long-poll took \(elapsed) s")
        }
    }

    @Test("tasks=false answers the run without its tasks, long-polls included; another value is 422")
    func snapshotWithoutTasks() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let summary = try await client.snapshot(runID, query: "?tasks=false")
            #expect(summary["tasks"] == nil, "no tasks member at all, as in a run-list item")
            #expect(summary["progress"]?["total"]?.asInt == 1)
            #expect(try await client.snapshot(runID, query: "?tasks=true")["tasks"].map { if case .array(let items) = $0 { items.count } else { 0 } } == 1)

            async let waited = client.snapshot(runID, query: "?wait=10&version=1&tasks=false")
            try await waitUntilParked(client)
            _ = try await client.claimTaskID()
            let changed = try await waited
            #expect((changed["version"]?.asInt ?? 0) > 1 && changed["tasks"] == nil)

            let refused = try await client.send(.get, "/v1/runs/\(runID)?tasks=no")
            #expect(refused.status == .unprocessableContent)
        }
    }

    @Test("A snapshot long-poll answers the unchanged snapshot when the wait runs out")
    func snapshotTimesOutUnchanged() async throws {
        try await withApp { client in
            let created = try await client.createRun(oneTaskRun)
            let start = ContinuousClock.now
            let snapshot = try await client.snapshot(created["id"]?.asString ?? "", query: "?wait=0.3&version=1")
            let elapsed = seconds(since: start)

            #expect(snapshot.canonical == created.canonical)
            #expect(elapsed >= 0.25, "returned after \(elapsed) s, before the wait ran out")
            #expect(elapsed < 8, "the long-poll took \(elapsed) s")
        }
    }

    @Test("A snapshot long-poll for a version already passed answers at once")
    func snapshotPastVersionAnswersAtOnce() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            _ = try await client.claimTaskID()
            let start = ContinuousClock.now
            let snapshot = try await client.snapshot(runID, query: "?wait=10&version=1")
            let elapsed = seconds(since: start)

            #expect((snapshot["version"]?.asInt ?? 0) > 1)
            #expect(elapsed < 8, "the long-poll took \(elapsed) s")
        }
    }

    @Test("A progress-only report wakes a snapshot long-poll")
    func progressWakesSnapshotLongPoll() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            let version = try await client.snapshot(runID)["version"]?.asInt ?? 0
            let start = ContinuousClock.now
            async let waited = client.snapshot(runID, query: "?wait=10&version=\(version)")
            try await waitUntilParked(client)
            try await client.reportOK(taskID, reportBody("running", #""progress":{"done":1,"total":4}"#))
            let snapshot = try await waited
            let elapsed = seconds(since: start)

            #expect(snapshot["version"]?.asInt == version + 1)
            #expect(snapshot.task(named: "build")?["progress"]?["done"]?.asInt == 1)
            #expect(elapsed < 8, "the long-poll took \(elapsed) s")
        }
    }

    @Test("A claim long-poll returns the task of a run created while it waits")
    func claimWakesOnCreate() async throws {
        try await withApp { client in
            let start = ContinuousClock.now
            async let claimed = client.claim(wait: "5")
            try await waitUntilParked(client)
            let runID = try await client.createRun(oneTaskRun)["id"]
            let answer = try await claimed
            let elapsed = seconds(since: start)

            #expect(answer?["task"]?["run_id"] == runID)
            #expect(elapsed < 8, "the claim took \(elapsed) s")
        }
    }

    @Test("A claim long-poll answers 204 when nothing comes within the wait")
    func claimTimesOutWithNoContent() async throws {
        try await withApp { client in
            let start = ContinuousClock.now
            let response = try await client.send(.post, "/v1/runners/host-a/claim?wait=0.3", json: #"{"labels":[]}"#)
            let elapsed = seconds(since: start)

            #expect(response.status == .noContent)
            #expect(elapsed >= 0.25, "returned after \(elapsed) s, before the wait ran out")
            #expect(elapsed < 8)
        }
    }

    @Test("A claim long-poll returns the task freed by a manual lock release")
    func claimWakesOnLockRelease() async throws {
        try await withApp { client in
            let body = runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]")
            _ = try await client.createRun(body)
            _ = try await client.createRun(body)
            _ = try await client.claimTaskID()
            let start = ContinuousClock.now
            async let claimed = client.claim(runner: "host-b", wait: "5")
            try await waitUntilParked(client)
            _ = try await client.send(.delete, "/v1/locks/repo-a")
            let answer = try await claimed
            let elapsed = seconds(since: start)

            #expect(answer?["task"]?["workspace"]?.asString == "repo-a")
            #expect(elapsed < 8, "the claim took \(elapsed) s")
        }
    }

    @Test("A claim long-poll ignores a new run whose task needs labels the runner lacks")
    func claimLongPollRespectsLabels() async throws {
        try await withApp { client in
            // Long enough to be seen parked on a loaded machine; the answer comes when it runs out.
            async let claimed = client.claim(labels: ["linux"], wait: "1")
            try await waitUntilParked(client)
            _ = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""labels":["gpu"]"#))]"))
            let answer = try await claimed

            #expect(answer == nil)
        }
    }

    @Test("A run's timeline long-poll returns the events of a concurrent change")
    func runEventsWakeOnChange() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let head = try await client.getJSON("/v1/runs/\(runID)/events")["next_after"]?.asInt ?? 0
            let start = ContinuousClock.now
            async let waited = client.getJSON("/v1/runs/\(runID)/events?after=\(head)&wait=10")
            try await waitUntilParked(client)
            _ = try await client.claimTaskID()
            let page = try await waited
            let elapsed = seconds(since: start)

            #expect(page.eventTypes == ["task.dispatched", "run.running"])
            #expect(elapsed < 8, "the long-poll took \(elapsed) s")
        }
    }

    @Test("A run's timeline long-poll answers an empty page echoing after when the wait runs out")
    func runEventsTimeOutEmpty() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let head = try await client.getJSON("/v1/runs/\(runID)/events")["next_after"]?.asInt ?? 0
            let start = ContinuousClock.now
            let page = try await client.getJSON("/v1/runs/\(runID)/events?after=\(head)&wait=0.3")
            let elapsed = seconds(since: start)

            #expect(page["events"] == .array([]))
            #expect(page["next_after"]?.asInt == head)
            #expect(elapsed >= 0.25 && elapsed < 8, "returned after \(elapsed) s")
        }
    }

    @Test("A run's timeline long-poll is not woken by another run's events")
    func runEventsIgnoreOtherRuns() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let head = try await client.getJSON("/v1/runs/\(runID)/events")["next_after"]?.asInt ?? 0
            // Long enough to be seen parked on a loaded machine; the answer comes when it runs out.
            async let waited = client.getJSON("/v1/runs/\(runID)/events?after=\(head)&wait=1")
            try await waitUntilParked(client)
            _ = try await client.createRun(oneTaskRun)
            let page = try await waited

            #expect(page["events"] == .array([]))
        }
    }

    @Test("A global events long-poll returns the run.created of a run created while it waits")
    func globalEventsWakeOnCreate() async throws {
        try await withApp { client in
            let start = ContinuousClock.now
            async let waited = client.getJSON("/v1/events?after=0&wait=10")
            try await waitUntilParked(client)
            let runID = try await client.createRun(oneTaskRun)["id"]
            let page = try await waited
            let elapsed = seconds(since: start)

            #expect(page.eventTypes == ["run.created"])
            #expect(page["events"]?.asArray?.first?["run_id"] == runID)
            #expect(elapsed < 8, "the long-poll took \(elapsed) s")
        }
    }

    @Test("Several long-polls on one run all wake on one change")
    func manyWaitersWake() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let versions = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<5 {
                    group.addTask { try await client.snapshot(runID, query: "?wait=10&version=1")["version"]?.asInt ?? 0 }
                }
                try await waitUntilParked(client, count: 5)
                _ = try await client.claimTaskID()
                var versions: [Int] = []
                for try await version in group { versions.append(version) }
                return versions
            }

            #expect(versions.count == 5)
            #expect(versions.allSatisfy { $0 > 1 })
        }
    }
}
