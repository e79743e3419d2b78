import HummingbirdTesting
import RunwardenCore
import Testing

/// Timelines: `GET /v1/runs/{id}/events` and `GET /v1/events` (SPEC §2 "Events", "Details").
@Suite("Events over the API")
struct EventsAPITests {
    /// A run of one task driven to `succeeded`: six events.
    private func finishedRun(_ client: any TestClientProtocol, workflow: String = "deploy") async throws -> String {
        let runID = try await client.createRun(runBody(workflow: workflow, tasks: "[\(taskJSON("build"))]"))["id"]?.asString ?? ""
        let taskID = try await client.claimTaskID()
        try await client.reportOK(taskID, reportBody("running"))
        try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
        return runID
    }

    private func seqs(_ page: JSONValue) -> [Int] { page["events"]?.asArray?.compactMap { $0["seq"]?.asInt } ?? [] }

    @Test("A run's timeline answers events and next_after, the last event's seq")
    func timelineShape() async throws {
        try await withApp { client in
            let runID = try await finishedRun(client)
            let page = try await client.getJSON("/v1/runs/\(runID)/events")
            let events = page["events"]?.asArray ?? []

            #expect(events.count == 6)
            #expect(page["next_after"]?.asInt == seqs(page).last)
            #expect(events.allSatisfy { $0["run_id"]?.asString == runID })
            #expect(events.allSatisfy { $0["id"]?.asString?.hasPrefix("evt_") == true })
        }
    }

    @Test("An event has every field SPEC names")
    func eventFields() async throws {
        try await withApp { client in
            let runID = try await finishedRun(client)
            let events = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray ?? []
            let expected: Set<String> = [
                "id", "seq", "run_seq", "run_id", "task_id", "type", "status", "previous_status", "timestamp", "attempt", "error",
            ]
            let taskSucceeded = events.first { $0["type"]?.asString == "task.succeeded" }

            #expect(events.allSatisfy { Set($0.objectMembers?.map(\.key) ?? []) == expected })
            #expect(taskSucceeded?["status"]?.asString == "succeeded")
            #expect(taskSucceeded?["previous_status"]?.asString == "running")
            #expect(taskSucceeded?["attempt"]?.asInt == 1)
            #expect(taskSucceeded?["task_id"]?.asString?.hasPrefix("task_") == true)
        }
    }

    @Test("seq strictly increases and run_seq counts 1, 2, 3 … without gaps")
    func seqAndRunSeq() async throws {
        try await withApp { client in
            let runID = try await finishedRun(client)
            let page = try await client.getJSON("/v1/runs/\(runID)/events")
            let seq = seqs(page)
            let runSeq = page["events"]?.asArray?.compactMap { $0["run_seq"]?.asInt } ?? []

            #expect(zip(seq, seq.dropFirst()).allSatisfy { $0 < $1 })
            #expect(runSeq == Array(1...6))
        }
    }

    @Test("run_seq has no gaps even when runs interleave")
    func runSeqWithInterleavedRuns() async throws {
        try await withApp { client in
            let first = try await client.createRun(runBody(tasks: "[\(taskJSON("a")),\(taskJSON("b"))]"))["id"]?.asString ?? ""
            let second = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            for _ in 0..<3 {
                let taskID = try await client.claimTaskID()
                try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            }
            let firstRunSeq = try await client.getJSON("/v1/runs/\(first)/events")["events"]?.asArray?.compactMap { $0["run_seq"]?.asInt }
            let secondRunSeq = try await client.getJSON("/v1/runs/\(second)/events")["events"]?.asArray?.compactMap {
                $0["run_seq"]?.asInt
            }

            #expect(firstRunSeq == Array(1...(firstRunSeq?.count ?? 1)))
            #expect(secondRunSeq == Array(1...(secondRunSeq?.count ?? 1)))
            #expect((firstRunSeq?.count ?? 0) > 1)
        }
    }

    @Test("after and limit page through the timeline")
    func afterAndLimitPage() async throws {
        try await withApp { client in
            let runID = try await finishedRun(client)
            let all = seqs(try await client.getJSON("/v1/runs/\(runID)/events"))
            let firstPage = try await client.getJSON("/v1/runs/\(runID)/events?limit=2")
            let after = firstPage["next_after"]?.asInt ?? 0
            let secondPage = try await client.getJSON("/v1/runs/\(runID)/events?after=\(after)&limit=2")

            #expect(seqs(firstPage) == Array(all.prefix(2)))
            #expect(after == all[1])
            #expect(seqs(secondPage) == Array(all.dropFirst(2).prefix(2)))
            #expect(secondPage["next_after"]?.asInt == all[3])
        }
    }

    @Test("An empty page echoes after as next_after")
    func emptyPageEchoesAfter() async throws {
        try await withApp { client in
            let runID = try await finishedRun(client)
            let page = try await client.getJSON("/v1/runs/\(runID)/events?after=9999")

            #expect(page["events"] == .array([]))
            #expect(page["next_after"]?.asInt == 9999)
        }
    }

    @Test("Within one commit task events come before the run event they cause")
    func taskEventsBeforeRunEvent() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            _ = try await client.claimTaskID()
            let page = try await client.getJSON("/v1/runs/\(runID)/events")

            #expect(page.eventTypes == ["run.created", "task.dispatched", "run.running"])
        }
    }

    @Test("A failed run's timeline ends with the run.failed event carrying the error")
    func failedRunEventCarriesError() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("failed", #""exit_code":3"#))
            let last = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray?.last

            #expect(last?["type"]?.asString == "run.failed")
            #expect(last?["error"]?["code"]?.asString == "task_failed")
        }
    }

    @Test("GET /v1/events answers every run's events in seq order")
    func globalEventsAcrossRuns() async throws {
        try await withApp { client in
            let first = try await client.createRun(oneTaskRun)["id"]?.asString
            let second = try await client.createRun(oneTaskRun)["id"]?.asString
            _ = try await client.claimTaskID()
            let page = try await client.getJSON("/v1/events")
            let events = page["events"]?.asArray ?? []
            let seq = seqs(page)
            let runIDs = Set(events.compactMap { $0["run_id"]?.asString })

            #expect(events.count == 5, "two run.created, the claim's task.dispatched and run.running, and the claimer's runner.online")
            #expect(events.filter { $0["run_id"]?.isNull == true }.compactMap { $0["type"]?.asString } == ["runner.online"])
            #expect(runIDs == Set([first, second].compactMap { $0 }))
            #expect(zip(seq, seq.dropFirst()).allSatisfy { $0 < $1 })
            #expect(page["next_after"]?.asInt == seq.last)
        }
    }

    @Test("GET /v1/events?after=N answers only later events, and echoes after when there are none")
    func globalEventsAfter() async throws {
        try await withApp { client in
            _ = try await client.createRun(oneTaskRun)
            let head = try await client.getJSON("/v1/events")["next_after"]?.asInt ?? 0
            let emptyPage = try await client.getJSON("/v1/events?after=\(head)")
            let second = try await client.createRun(oneTaskRun)["id"]
            let nextPage = try await client.getJSON("/v1/events?after=\(head)")

            #expect(emptyPage["events"] == .array([]))
            #expect(emptyPage["next_after"]?.asInt == head)
            #expect(nextPage.eventTypes == ["run.created"])
            #expect(nextPage["events"]?.asArray?.first?["run_id"] == second)
        }
    }

    @Test("A run's timeline after= is the global seq, shared with /v1/events")
    func runTimelineCursorIsGlobalSeq() async throws {
        try await withApp { client in
            let first = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let globalHead = try await client.getJSON("/v1/events")["next_after"]?.asInt ?? 0
            _ = try await client.send(.post, "/v1/runs/\(first)/cancel")
            let page = try await client.getJSON("/v1/runs/\(first)/events?after=\(globalHead)")

            #expect(page.eventTypes == ["task.canceled", "run.canceled"])
            #expect(seqs(page).allSatisfy { $0 > globalHead })
        }
    }
}
