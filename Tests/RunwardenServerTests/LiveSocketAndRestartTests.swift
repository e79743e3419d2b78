import HummingbirdTesting
import RunwardenCore
import Testing

/// The same API over a real loopback socket, through HTTP/1.1 framing and a real client.
@Suite("Live loopback socket")
struct LiveSocketTests {
    @Test("Over a live socket a run is created, claimed, reported and read back", arguments: [TestingSetup.live, .ahc(.http)])
    func lifecycleOverLiveSocket(setup: TestingSetup) async throws {
        try await withApp(setup: setup) { client in
            let created = try await client.send(.post, "/v1/runs", json: oneTaskRun)
            let runID = try created.json()["id"]?.asString ?? ""
            let claimed = try await client.claim()
            let taskID = claimed?["task"]?["id"]?.asString ?? ""
            let running = try await client.reportOK(taskID, reportBody("running"))
            let succeeded = try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let snapshot = try await client.snapshot(runID)

            #expect(client.port != nil)
            #expect(created.status == .accepted)
            #expect(created.headers[.location] == "/v1/runs/\(runID)")
            #expect(claimed?["task"]?["run_id"]?.asString == runID)
            #expect(running["applied"]?.asBool == true)
            #expect(succeeded["applied"]?.asBool == true)
            #expect(snapshot["status"]?.asString == "succeeded")
            #expect(snapshot["progress"]?["percent"]?.asInt == 100)
        }
    }

    @Test("Over a live socket an unknown path answers 404 route_not_found in the JSON envelope", arguments: [TestingSetup.live, .ahc(.http)])
    func unknownPathOverLiveSocket(setup: TestingSetup) async throws {
        try await withApp(setup: setup) { client in
            let response = try await client.send(.get, "/v1/nothing-here")

            try expectError(response, .notFound, "route_not_found")
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    @Test("Over a live socket a claim with nothing to do answers 204 with an empty body")
    func noContentOverLiveSocket() async throws {
        try await withApp(setup: .ahc(.http)) { client in
            let response = try await client.send(.post, "/v1/runners/host-a/claim", json: #"{"labels":[]}"#)

            #expect(response.status == .noContent)
            #expect(response.body.readableBytes == 0)
        }
    }

    @Test("Over a live socket HEAD answers a GET route's status and length with no body")
    func headOverLiveSocket() async throws {
        try await withApp(setup: .ahc(.http)) { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            for path in ["/healthz", "/v1/runs/\(runID)", "/v1/runs"] {
                let get = try await client.send(.get, path)
                let head = try await client.send(.head, path)

                #expect(head.status == .ok, "HEAD \(path)")
                #expect(head.body.readableBytes == 0, "HEAD \(path)")
                #expect(head.headers[.contentLength] == String(get.body.readableBytes), "HEAD \(path)")
                #expect(head.headers[.contentType] == get.headers[.contentType], "HEAD \(path)")
            }
            let missing = try await client.send(.head, "/v1/runs/run_01JZZZZZZZZZZZZZZZZZZZZZZZ")
            #expect(missing.status == .notFound)
            #expect(missing.body.readableBytes == 0)
            let stream = try await client.send(.head, "/v1/runs/\(runID)/stream")
            #expect(stream.status == .ok)
            #expect(stream.body.readableBytes == 0)
        }
    }

    @Test("Over a live socket a body over --max-body answers 413 payload_too_large")
    func oversizedBodyOverLiveSocket() async throws {
        try await withApp(setup: .ahc(.http), { $0.maxBodyBytes = 1024 }) { client in
            let padding = String(repeating: "x", count: 4000)
            let response = try await client.send(
                .post, "/v1/runs", json: runBody(tasks: "[\(taskJSON("build"))]", extra: #""metadata":{"pad":"\#(padding)"}"#))

            try expectError(response, .contentTooLarge, "payload_too_large")
        }
    }
}

/// SPEC §1: "From then on GET /v1/runs/{id} resolves it forever" — across a restart too.
@Suite("Restart")
struct RestartTests {
    @Test("A finished run reads back the same after the server restarts on the same SQLite file")
    func finishedRunSurvivesRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (runID, snapshotBefore, eventsBefore) = try await withApp(database: directory.databasePath) { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0,"output_ref":"s3://b/1""#))
            return (runID, try await client.snapshot(runID), try await client.getJSON("/v1/runs/\(runID)/events"))
        }

        let (snapshotAfter, eventsAfter) = try await withApp(database: directory.databasePath) { client in
            (try await client.snapshot(runID), try await client.getJSON("/v1/runs/\(runID)/events"))
        }

        #expect(snapshotAfter["status"]?.asString == "succeeded")
        #expect(snapshotAfter.canonical == snapshotBefore.canonical)
        #expect(eventsAfter.canonical == eventsBefore.canonical)
        #expect(eventsAfter.eventTypes.count == 6)
    }

    @Test("An idempotency key still replays after a restart")
    func idempotencyKeySurvivesRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let firstID = try await withApp(database: directory.databasePath) { client in
            try await client.send(.post, "/v1/runs", json: oneTaskRun, headers: [.idempotencyKey: "key-1"]).json()["id"]
        }

        let replay = try await withApp(database: directory.databasePath) { client in
            try await client.send(.post, "/v1/runs", json: oneTaskRun, headers: [.idempotencyKey: "key-1"])
        }
        let replayID = try replay.json()["id"]

        #expect(replay.status == .ok)
        #expect(replayID == firstID)
    }

    @Test("seq keeps increasing across a restart")
    func seqContinuesAfterRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let headBefore = try await withApp(database: directory.databasePath) { client in
            _ = try await client.createRun(oneTaskRun)
            return try await client.getJSON("/v1/events")["next_after"]?.asInt ?? 0
        }

        let newEvents = try await withApp(database: directory.databasePath) { client in
            _ = try await client.createRun(oneTaskRun)
            return try await client.getJSON("/v1/events?after=\(headBefore)")
        }
        let seq = newEvents["events"]?.asArray?.compactMap { $0["seq"]?.asInt } ?? []

        #expect(seq.count == 1)
        #expect(seq.allSatisfy { $0 > headBefore })
    }
}
