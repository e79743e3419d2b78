import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import RunwardenCore
import RunwardenServer
import Testing

/// Server-Sent Events (SPEC §2 `GET /v1/runs/{id}/stream`, `GET /v1/events/stream`): read by a real
/// HTTP client (AsyncHTTPClient) over a loopback socket, chunk by chunk as the server writes them,
/// while the run is driven through the API. Every read is bounded by the stream's lifetime.
@Suite("Event streams over a live socket")
struct EventStreamTests {
    // MARK: - Run stream: history, live, end

    @Test("A run stream sends the run's history first, then its live events in seq order, and ends right after run.succeeded")
    func runStreamHistoryThenLiveThenEnd() async throws {
        try await withLiveApp { client, port in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            var stream = try await SSEStream.open(port: port, path: "/v1/runs/\(runID)/stream")
            defer { stream.close() }

            let history = try await stream.frames(3)
            try await client.reportOK(taskID, reportBody("running"))
            let live = try await stream.frames(1)
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let last = try await stream.frames(2)
            let afterLast = try await stream.nextItem()
            let timeline = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray ?? []
            let frames = history + live + last

            #expect(stream.status == .ok)
            #expect(stream.contentType?.hasPrefix("text/event-stream") == true, "content-type: \(stream.contentType ?? "none")")
            #expect(stream.retries.first == "2000", "the stream opens with a retry hint")
            #expect(history.map(\.event) == ["run.created", "task.dispatched", "run.running"])
            #expect(live.map(\.event) == ["task.running"])
            #expect(last.map(\.event) == ["task.succeeded", "run.succeeded"])
            #expect(frames.map(\.id) == timeline.map { $0["seq"].map(seqText) ?? "?" })
            #expect(frames.count == timeline.count)
            for (frame, event) in zip(frames, timeline) {
                try expectFrame(frame, matches: event, runID: runID)
            }
            #expect(afterLast == nil, "after run.succeeded the body must end, not go on with \(String(describing: afterLast))")
            #expect(stream.ended)
            if let endedAt = stream.endedAt, let lastFrame = last.last {
                #expect(endedAt - lastFrame.arrivedAt < .seconds(1))
            }
        }
    }

    @Test("A run stream opened on a finished run replays all of it and ends after the terminal event")
    func runStreamOfFinishedRun() async throws {
        try await withLiveApp { client, port in
            let runID = try await finishedRun(client)
            let timeline = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray ?? []
            var stream = try await SSEStream.open(port: port, path: "/v1/runs/\(runID)/stream")
            defer { stream.close() }

            let frames = try await stream.remainingFrames()

            #expect(frames.map(\.event) == timeline.map { $0["type"]?.asString ?? "?" })
            #expect(frames.last?.event == "run.succeeded")
            for (frame, event) in zip(frames, timeline) {
                try expectFrame(frame, matches: event, runID: runID)
            }
            #expect(stream.comments.isEmpty, "no keep-alive is needed when everything is already there")
            #expect(stream.ended)
        }
    }

    @Test("Two clients streaming the same run receive the same frames and are both closed at the end")
    func twoSubscribersSeeTheSameFrames() async throws {
        try await withLiveApp { client, port in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            var first = try await SSEStream.open(port: port, path: "/v1/runs/\(runID)/stream")
            defer { first.close() }
            var second = try await SSEStream.open(port: port, path: "/v1/runs/\(runID)/stream")
            defer { second.close() }
            _ = try await first.frames(1)
            _ = try await second.frames(1)

            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let firstRest = try await first.remainingFrames()
            let secondRest = try await second.remainingFrames()

            #expect(firstRest.count == 5)
            #expect(firstRest.map(\.id) == secondRest.map(\.id))
            #expect(firstRest.map(\.data) == secondRest.map(\.data))
            #expect(first.ended && second.ended)
        }
    }

    // MARK: - Resuming

    @Test("Last-Event-ID: N resumes a run stream strictly after seq N, without gaps or duplicates, for every N")
    func lastEventIDResumesAtEveryPoint() async throws {
        try await withLiveApp { client, port in
            // Two runs whose events interleave, so the run's seqs have holes that belong to the other run.
            let runA = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let runB = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskA = try await client.claimTaskID()
            try await client.reportOK(taskA, reportBody("running"))
            let taskB = try await client.claimTaskID()
            try await client.reportOK(taskA, reportBody("succeeded", #""exit_code":0"#))
            try await client.reportOK(taskB, reportBody("running"))
            try await client.reportOK(taskB, reportBody("succeeded", #""exit_code":0"#))
            let timelineA = try await client.getJSON("/v1/runs/\(runA)/events")["events"]?.asArray ?? []
            let seqsA = timelineA.compactMap { $0["seq"]?.asInt }
            let allSeqs = try await client.getJSON("/v1/events?limit=500")["events"]?.asArray?.compactMap { $0["seq"]?.asInt } ?? []
            let terminalA = seqsA.last ?? 0
            #expect(Set(allSeqs).subtracting(seqsA).contains { $0 < terminalA }, "the runs must interleave for this test to mean something")
            #expect(!runB.isEmpty)

            for resumeAt in 0..<terminalA {
                var stream = try await SSEStream.open(
                    port: port, path: "/v1/runs/\(runA)/stream", headers: [("Last-Event-ID", "\(resumeAt)")])
                defer { stream.close() }
                let frames = try await stream.remainingFrames()
                let expected = timelineA.filter { ($0["seq"]?.asInt ?? 0) > resumeAt }

                #expect(frames.map(\.id) == expected.map { $0["seq"].map(seqText) ?? "?" }, "Last-Event-ID: \(resumeAt)")
                for (frame, event) in zip(frames, expected) {
                    try expectFrame(frame, matches: event, runID: runA)
                }
                #expect(stream.ended, "Last-Event-ID: \(resumeAt)")
            }
        }
    }

    @Test("A run stream resumed mid-run sends the rest of the history, then the live events, then ends")
    func lastEventIDResumesThenGoesLive() async throws {
        try await withLiveApp { client, port in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            let before = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray ?? []
            let resumeAt = before.first?["seq"]?.asInt ?? 0
            var stream = try await SSEStream.open(
                port: port, path: "/v1/runs/\(runID)/stream", headers: [("Last-Event-ID", "\(resumeAt)")])
            defer { stream.close() }

            let history = try await stream.frames(2)
            try await client.reportOK(taskID, reportBody("running"))
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let live = try await stream.remainingFrames()
            let timeline = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray ?? []
            let expected = timeline.filter { ($0["seq"]?.asInt ?? 0) > resumeAt }
            let frames = history + live

            #expect(history.map(\.event) == ["task.dispatched", "run.running"])
            #expect(live.map(\.event) == ["task.running", "task.succeeded", "run.succeeded"])
            #expect(frames.map(\.id) == expected.map { $0["seq"].map(seqText) ?? "?" })
            #expect(Set(frames.map(\.id)).count == frames.count, "no frame is sent twice")
            #expect(stream.ended)
        }
    }

    @Test("?after=N resumes a run stream like Last-Event-ID: N")
    func afterQueryResumesLikeLastEventID() async throws {
        try await withLiveApp { client, port in
            let runID = try await finishedRun(client)
            let timeline = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray ?? []
            let resumeAt = timeline.dropFirst().first?["seq"]?.asInt ?? 0
            var byQuery = try await SSEStream.open(port: port, path: "/v1/runs/\(runID)/stream?after=\(resumeAt)")
            defer { byQuery.close() }
            var byHeader = try await SSEStream.open(
                port: port, path: "/v1/runs/\(runID)/stream", headers: [("Last-Event-ID", "\(resumeAt)")])
            defer { byHeader.close() }

            let queryFrames = try await byQuery.remainingFrames()
            let headerFrames = try await byHeader.remainingFrames()

            #expect(queryFrames.count == timeline.count - 2)
            #expect(queryFrames.first?.event == timeline.dropFirst(2).first?["type"]?.asString)
            #expect(queryFrames.first?.event == "run.running")
            #expect(queryFrames.map(\.id) == headerFrames.map(\.id))
            #expect(queryFrames.map(\.data) == headerFrames.map(\.data))
        }
    }

    @Test("Resuming a run stream after its terminal event (or past the end) closes it with no frames", arguments: [0, 1_000_000])
    func resumeAfterTheEndClosesWithoutFrames(beyond: Int) async throws {
        try await withLiveApp { client, port in
            let runID = try await finishedRun(client)
            let terminalSeq = try await client.getJSON("/v1/runs/\(runID)/events")["next_after"]?.asInt ?? 0
            let start = ContinuousClock.now
            var stream = try await SSEStream.open(
                port: port, path: "/v1/runs/\(runID)/stream", headers: [("Last-Event-ID", "\(terminalSeq + beyond)")])
            defer { stream.close() }

            let frames = try await stream.remainingFrames()
            let elapsed = ContinuousClock.now - start

            #expect(stream.status == .ok)
            #expect(frames.isEmpty, "frames after the end: \(frames.map(\.event))")
            #expect(stream.comments.isEmpty, "a finished stream needs no keep-alive")
            #expect(stream.ended)
            #expect(elapsed < .seconds(2), "closed after \(elapsed)")
        }
    }

    @Test(
        "Resuming after the terminal event closes the stream at once, not after a keep-alive interval"
    )
    func resumeAfterTheEndClosesAtOnce() async throws {
        try await withLiveApp(keepAlive: .seconds(3)) { client, port in
            let runID = try await finishedRun(client)
            let terminalSeq = try await client.getJSON("/v1/runs/\(runID)/events")["next_after"]?.asInt ?? 0
            let start = ContinuousClock.now
            var stream = try await SSEStream.open(
                port: port, path: "/v1/runs/\(runID)/stream", headers: [("Last-Event-ID", "\(terminalSeq)")])
            defer { stream.close() }

            let frames = try await stream.remainingFrames()
            let elapsed = ContinuousClock.now - start

            #expect(frames.isEmpty)
            #expect(stream.ended)
            #expect(elapsed < .seconds(1), "with a 3 s keep-alive interval the stream closed after \(elapsed)")
        }
    }

    @Test("A run stream ends right after run.canceled when the run is canceled while a client follows it")
    func runStreamEndsAfterCancel() async throws {
        try await withLiveApp { client, port in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            var stream = try await SSEStream.open(port: port, path: "/v1/runs/\(runID)/stream")
            defer { stream.close() }
            let created = try await stream.frames(1)

            let cancel = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let rest = try await stream.remainingFrames()
            let timeline = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray ?? []

            #expect(cancel.status == .accepted)
            #expect(created.map(\.event) == ["run.created"])
            #expect(rest.last?.event == "run.canceled")
            #expect((created + rest).map(\.id) == timeline.map { $0["seq"].map(seqText) ?? "?" })
            #expect(stream.ended)
        }
    }

    // MARK: - Shutdown

    @Test(
        "Shutting the server down ends an open global stream instead of waiting for its client to leave"
    )
    func shutdownEndsOpenStreams() async throws {
        let (drain, shutdownStarted) = try await withLiveApp { client, port in
            var stream = try await SSEStream.open(port: port, path: "/v1/events/stream", lifetime: .seconds(6))
            try await stream.waitForRetry()
            // A client that keeps reading, as EventSource does, until the server ends the body.
            let drain = Task { () -> String in
                do {
                    while try await stream.nextItem() != nil {}
                    return "ended"
                } catch {
                    return "\(error)"
                }
            }
            return (drain, ContinuousClock.now)
        }
        let shutdown = ContinuousClock.now - shutdownStarted
        let outcome = await drain.value

        // Without the fix shutdown lasts as long as the client stays (over 6 s here).
        #expect(shutdown < .seconds(5), "the server took \(shutdown) to shut down with a stream open")
        #expect(outcome == "ended", "the stream did not end cleanly: \(outcome)")
    }

    // MARK: - Keep-alive

    @Test("An idle stream sends ': keep-alive' comments at the configured interval", arguments: ["run", "all"])
    func idleStreamSendsKeepAlives(route: String) async throws {
        try await withLiveApp { client, port in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let path = route == "run" ? "/v1/runs/\(runID)/stream" : "/v1/events/stream"
            let start = ContinuousClock.now
            var stream = try await SSEStream.open(port: port, path: path)
            defer { stream.close() }

            var frames: [SSEFrame] = []
            while stream.comments.count < 2, let item = try await stream.nextItem() {
                if case .frame(let frame) = item { frames.append(frame) }
            }
            let elapsed = ContinuousClock.now - start

            #expect(stream.comments.count == 2, "the stream ended before two keep-alives")
            #expect(stream.comments.allSatisfy { $0.trimmingCharacters(in: .whitespaces) == "keep-alive" }, "\(stream.comments)")
            #expect(elapsed < .milliseconds(4900), "two keep-alives at a 300 ms interval took \(elapsed)")
            #expect(elapsed > .milliseconds(400), "two keep-alives came after only \(elapsed): not paced by the interval")
            #expect(frames.map(\.event) == (route == "run" ? ["run.created"] : []), "an idle stream sends no other frames")
            #expect(!stream.ended)
        }
    }

    // MARK: - Errors

    @Test("A stream of an unknown run answers 404 run_not_found in the JSON envelope, not a stream")
    func unknownRunStreamIs404() async throws {
        try await withLiveApp { client, port in
            let response = try await client.send(.get, "/v1/runs/run_unknown/stream")
            let viaAHC = try await plainRequest(port: port, path: "/v1/runs/run_unknown/stream")

            try expectError(response, .notFound, "run_not_found")
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(viaAHC.status == .notFound)
            #expect(viaAHC.contentType?.hasPrefix("application/json") == true)
            #expect(viaAHC.json?["error"]?["code"]?.asString == "run_not_found", "\(viaAHC.text)")
        }
    }

    @Test(
        "A malformed resume point answers 422 validation_failed",
        arguments: [
            ("run", "Last-Event-ID", "abc"), ("all", "Last-Event-ID", "abc"), ("run", "Last-Event-ID", "-1"),
            ("all", "Last-Event-ID", "1.5"), ("run", "query", "abc"), ("all", "query", "-3"),
        ])
    func malformedResumePointIs422(route: String, via: String, value: String) async throws {
        try await withLiveApp { client, _ in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let base = route == "run" ? "/v1/runs/\(runID)/stream" : "/v1/events/stream"
            let response: TestResponse
            if via == "query" {
                response = try await client.send(.get, "\(base)?after=\(value)")
            } else {
                response = try await client.send(.get, base, headers: [.lastEventIDForTests: value])
            }

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    // MARK: - Global stream

    @Test("The global stream delivers, in seq order, the events of two runs created after it connected, and nothing older")
    func globalStreamDeliversNewEventsOfTwoRuns() async throws {
        try await withLiveApp { client, port in
            let oldRun = try await finishedRun(client)
            let head = try await client.getJSON("/v1/events?limit=500")["next_after"]?.asInt ?? 0
            var stream = try await SSEStream.open(port: port, path: "/v1/events/stream")
            defer { stream.close() }
            try await stream.waitForRetry()  // written once the server has taken its starting point

            let runA = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let runB = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskA = try await client.claimTaskID()
            try await client.reportOK(taskA, reportBody("running"))
            let taskB = try await client.claimTaskID()
            try await client.reportOK(taskA, reportBody("succeeded", #""exit_code":0"#))
            try await client.reportOK(taskB, reportBody("failed", #""exit_code":2"#))
            let expected = try await client.getJSON("/v1/events?after=\(head)&limit=500")["events"]?.asArray ?? []
            let frames = try await stream.frames(expected.count)
            let next = try await stream.nextItem()
            let seqs = frames.compactMap { Int($0.id ?? "") }

            #expect(frames.map(\.id) == expected.map { $0["seq"].map(seqText) ?? "?" })
            for (frame, event) in zip(frames, expected) {
                try expectFrame(frame, matches: event, runID: nil)
            }
            #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 < $1 })
            #expect(Set(frames.compactMap { try? $0.json()["run_id"]?.asString }) == [runA, runB])
            #expect(!frames.contains { (try? $0.json()["run_id"]?.asString) == oldRun }, "events from before the connection were replayed")
            #expect(frames.contains { $0.event == "run.succeeded" } && frames.contains { $0.event == "run.failed" })
            if case .comment = next {
            } else {
                Issue.record("after the expected frames the next item should be a keep-alive, got \(String(describing: next))")
            }
            #expect(!stream.ended, "the global stream does not end when a run does")
        }
    }

    @Test(
        "The global stream with Last-Event-ID (or ?after=) replays every event after that seq, then goes on live",
        arguments: [(0, "header"), (3, "header"), (3, "query")])
    func globalStreamReplaysFromLastEventID(resumeAt: Int, via: String) async throws {
        try await withLiveApp { client, port in
            _ = try await finishedRun(client)
            _ = try await client.createRun(oneTaskRun)
            let all = try await client.getJSON("/v1/events?limit=500")["events"]?.asArray ?? []
            let expected = all.filter { ($0["seq"]?.asInt ?? 0) > resumeAt }
            var stream =
                via == "query"
                ? try await SSEStream.open(port: port, path: "/v1/events/stream?after=\(resumeAt)")
                : try await SSEStream.open(port: port, path: "/v1/events/stream", headers: [("Last-Event-ID", "\(resumeAt)")])
            defer { stream.close() }

            let replay = try await stream.frames(expected.count)
            let afterReplay = try await stream.nextItem()
            let liveRun = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let live = try await stream.frames(1)

            #expect(all.count == 8, "seven events of two runs and the runner's runner.online")
            #expect(replay.map(\.id) == expected.map { $0["seq"].map(seqText) ?? "?" })
            for (frame, event) in zip(replay, expected) {
                try expectFrame(frame, matches: event, runID: nil)
            }
            if case .comment = afterReplay {
            } else {
                Issue.record("after the replay the next item should be a keep-alive, got \(String(describing: afterReplay))")
            }
            #expect(live.first?.event == "run.created")
            #expect(try live.first?.json()["run_id"]?.asString == liveRun)
            #expect(Int(live.first?.id ?? "") ?? 0 > all.last?["seq"]?.asInt ?? Int.max)
        }
    }

    // MARK: - Authentication and content type

    @Test("With tokens configured a stream needs the client token: 401 without one, 403 with the runner token", arguments: ["run", "all"])
    func streamNeedsTheClientToken(route: String) async throws {
        try await withLiveApp({ configuration in
            configuration.clientToken = Tokens.client
            configuration.runnerToken = Tokens.runner
        }) { client, port in
            let runID = try await client.createRun(oneTaskRun, token: Tokens.client)["id"]?.asString ?? ""
            let path = route == "run" ? "/v1/runs/\(runID)/stream" : "/v1/events/stream"
            let anonymous = try await client.send(.get, path)
            let wrongToken = try await client.send(.get, path, token: "nope")
            let runnerToken = try await client.send(.get, path, token: Tokens.runner)
            let unknownRunAnonymous = try await client.send(.get, "/v1/runs/run_unknown/stream")
            var stream = try await SSEStream.open(
                port: port, path: path, headers: [("Authorization", "Bearer \(Tokens.client)"), ("Last-Event-ID", "0")])
            defer { stream.close() }
            let first = try await stream.frames(1)

            try expectError(anonymous, .unauthorized, "unauthorized")
            try expectError(wrongToken, .unauthorized, "unauthorized")
            try expectError(runnerToken, .forbidden, "forbidden")
            try expectError(unknownRunAnonymous, .unauthorized, "unauthorized")
            #expect(stream.status == .ok)
            #expect(stream.contentType?.hasPrefix("text/event-stream") == true)
            #expect(first.first?.event == "run.created")
        }
    }

    @Test("Both stream routes answer with the content type text/event-stream", arguments: ["run", "all"])
    func contentTypeIsEventStream(route: String) async throws {
        try await withLiveApp { client, port in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let path = route == "run" ? "/v1/runs/\(runID)/stream" : "/v1/events/stream"
            let stream = try await SSEStream.open(port: port, path: path)
            defer { stream.close() }

            #expect(stream.status == .ok)
            #expect(stream.contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) == "text/event-stream")
        }
    }

    // MARK: - The test's own SSE parser

    @Test("The SSE parser reassembles frames split across chunks, skips comments and handles CRLF")
    func parserHandlesChunksAndComments() throws {
        let text = "retry: 2000\r\n\r\n: keep-alive\n\nid: 7\nevent: run.created\ndata: {\"seq\":7,\ndata: \"type\":\"run.created\"}\n\nid: 8\r\nevent: x\r\n"
        var parser = SSEParser()
        var items: [SSEItem] = []
        for byte in Array(text.utf8) {
            items += parser.feed([byte])
        }
        let frames = items.compactMap { if case .frame(let frame) = $0 { frame } else { nil } }

        #expect(items.count == 3)
        #expect(frames.count == 1)
        #expect(frames.first?.fieldNames == ["id", "event", "data", "data"])
        #expect(frames.first?.id == "7")
        #expect(frames.first?.event == "run.created")
        #expect(try frames.first?.json()["seq"]?.asInt == 7)
        #expect(parser.isMidFrame, "the unterminated frame 8 is held back")
        if case .retry(let value) = items.first { #expect(value == "2000") } else { Issue.record("first item: \(items)") }
        if case .comment(let value) = items.dropFirst().first { #expect(value == " keep-alive") } else { Issue.record("second: \(items)") }
    }

    // MARK: - Helpers

    /// A run of one task driven to `succeeded`: six events.
    private func finishedRun(_ client: any TestClientProtocol) async throws -> String {
        let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
        let taskID = try await client.claimTaskID()
        try await client.reportOK(taskID, reportBody("running"))
        try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
        return runID
    }
}

// MARK: - App over a live socket

/// Builds the real application on a fresh SQLite file with a short keep-alive interval, serves it on a
/// loopback socket and runs `body` with the live test client and the bound port.
func withLiveApp<Value: Sendable>(
    keepAlive: Duration = .milliseconds(300),
    _ configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @Sendable (any TestClientProtocol, Int) async throws -> Value
) async throws -> Value {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let configuration = testConfiguration(database: directory.databasePath) {
        $0.streamKeepAlive = keepAlive
        configure(&$0)
    }
    let app = try await buildApplication(configuration, logger: quietLogger)
    return try await app.test(.live) { client in
        let port = try #require(client.port)
        return try await body(client, port)
    }
}

extension HTTPField.Name {
    fileprivate static let lastEventIDForTests = Self("Last-Event-ID")!
}

/// The `seq` of an event as an SSE `id` line carries it.
private func seqText(_ value: JSONValue) -> String {
    value.asInt.map(String.init) ?? "not-an-int: \(value)"
}

/// One frame against SPEC §2: `id: <seq>`, `event: <type>`, `data: <event JSON>`, and the data is
/// the event `GET …/events` lists.
private func expectFrame(
    _ frame: SSEFrame, matches event: JSONValue, runID: String?, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let data = try frame.json()
    #expect(frame.fieldNames == ["id", "event", "data"], "frame: \(frame)", sourceLocation: sourceLocation)
    #expect(frame.id == data["seq"].map(seqText), "id must be the event's seq", sourceLocation: sourceLocation)
    #expect(frame.event == data["type"]?.asString, "event must be the event's type", sourceLocation: sourceLocation)
    if let runID {
        #expect(data["run_id"]?.asString == runID, sourceLocation: sourceLocation)
    }
    #expect(data.canonical == event.canonical, "frame data \(frame.data) differs from \(event)", sourceLocation: sourceLocation)
}

// MARK: - A streaming SSE client

/// What one line or block of an SSE body is.
enum SSEItem: Sendable {
    case retry(String)
    case comment(String)
    case frame(SSEFrame)
}

/// One dispatched SSE event: the fields of a block ended by a blank line.
struct SSEFrame: Sendable, CustomStringConvertible {
    var fieldNames: [String] = []
    var id: String?
    var event: String?
    var dataLines: [String] = []
    var arrivedAt = ContinuousClock.now

    var data: String { dataLines.joined(separator: "\n") }

    func json() throws -> JSONValue { try JSONValue.parse(Data(data.utf8)) }

    var description: String { "SSEFrame(fields: \(fieldNames), id: \(id ?? "nil"), event: \(event ?? "nil"), data: \(data))" }
}

/// An incremental parser of `text/event-stream` (WHATWG HTML §9.2.6): lines end in CRLF, LF or CR;
/// a blank line dispatches the block; `:` starts a comment; `field: value` loses one leading space.
struct SSEParser {
    private var line: [UInt8] = []
    private var afterCR = false
    private var frame = SSEFrame()

    /// A frame (or line) has started but no blank line has ended it yet.
    var isMidFrame: Bool { !line.isEmpty || !frame.fieldNames.isEmpty }

    mutating func feed<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> [SSEItem] {
        var items: [SSEItem] = []
        for byte in bytes {
            if afterCR, byte == UInt8(ascii: "\n") {
                afterCR = false
                continue
            }
            afterCR = byte == UInt8(ascii: "\r")
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                if let item = endLine() { items.append(item) }
            } else {
                line.append(byte)
            }
        }
        return items
    }

    private mutating func endLine() -> SSEItem? {
        let text = String(decoding: line, as: UTF8.self)
        line.removeAll(keepingCapacity: true)
        if text.isEmpty {
            defer { frame = SSEFrame() }
            guard !frame.fieldNames.isEmpty else { return nil }
            var dispatched = frame
            dispatched.arrivedAt = .now
            return .frame(dispatched)
        }
        if text.hasPrefix(":") { return .comment(String(text.dropFirst())) }
        let name: String
        var value: Substring
        if let colon = text.firstIndex(of: ":") {
            name = String(text[..<colon])
            value = text[text.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            name = text
            value = ""
        }
        switch name {
        case "retry": return .retry(String(value))
        case "id": frame.id = String(value)
        case "event": frame.event = String(value)
        case "data": frame.dataLines.append(String(value))
        default: break
        }
        frame.fieldNames.append(name)
        return nil
    }
}

/// The stream was still open when its lifetime ran out, or a frame was cut off.
struct StreamProblem: Error, CustomStringConvertible {
    let description: String
}

/// Runs `operation`, failing with `StreamProblem` when it takes longer than `limit`.
func withTimeLimit<T: Sendable>(
    _ limit: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw StreamProblem(description: "\(what) after \(limit)")
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() else { throw StreamProblem(description: "\(what): no result") }
        return result
    }
}

/// One SSE response read by AsyncHTTPClient: a background task reads the body chunk by chunk as it
/// arrives, parses it and hands the items over. The whole read is bounded by `lifetime`: a stream
/// still open by then fails the next read instead of hanging the test.
struct SSEStream {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    private var items: AsyncThrowingStream<SSEItem, any Error>.AsyncIterator
    private let reader: Task<Void, Never>
    private(set) var comments: [String] = []
    private(set) var retries: [String] = []
    private(set) var ended = false
    private(set) var endedAt: ContinuousClock.Instant?

    var contentType: String? { headers.first(name: "content-type") }

    static func open(
        port: Int, path: String, headers: [(String, String)] = [], lifetime: Duration = .seconds(5)
    ) async throws -> SSEStream {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .GET
        request.headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = response.body
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: SSEItem.self)
        let reader = Task {
            do {
                try await withTimeLimit(lifetime, "the stream \(path) was still open") {
                    var parser = SSEParser()
                    for try await buffer in body {
                        for item in parser.feed(buffer.readableBytesView) { continuation.yield(item) }
                    }
                    if parser.isMidFrame { throw StreamProblem(description: "the body of \(path) ended inside a frame") }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return SSEStream(status: response.status, headers: response.headers, items: stream.makeAsyncIterator(), reader: reader)
    }

    private init(
        status: HTTPResponseStatus, headers: HTTPHeaders, items: AsyncThrowingStream<SSEItem, any Error>.AsyncIterator,
        reader: Task<Void, Never>
    ) {
        self.status = status
        self.headers = headers
        self.items = items
        self.reader = reader
    }

    /// Drops the connection (the reader's cancellation cancels the HTTP request).
    func close() { reader.cancel() }

    /// The next retry, comment or frame; nil once the server has ended the body.
    mutating func nextItem() async throws -> SSEItem? {
        if ended { return nil }
        guard let item = try await items.next() else {
            ended = true
            endedAt = .now
            return nil
        }
        switch item {
        case .comment(let text): comments.append(text)
        case .retry(let value): retries.append(value)
        case .frame: break
        }
        return item
    }

    /// The next frame, skipping comments and retry hints; nil once the body has ended.
    mutating func nextFrame() async throws -> SSEFrame? {
        while let item = try await nextItem() {
            if case .frame(let frame) = item { return frame }
        }
        return nil
    }

    /// Exactly `count` more frames; fails when the body ends first.
    mutating func frames(_ count: Int) async throws -> [SSEFrame] {
        var frames: [SSEFrame] = []
        while frames.count < count {
            guard let frame = try await nextFrame() else {
                throw StreamProblem(description: "the stream ended after \(frames.count) of \(count) frames: \(frames)")
            }
            frames.append(frame)
        }
        return frames
    }

    /// Every frame until the server ends the body.
    mutating func remainingFrames() async throws -> [SSEFrame] {
        var frames: [SSEFrame] = []
        while let frame = try await nextFrame() { frames.append(frame) }
        return frames
    }

    /// Reads until the `retry:` hint the server writes first; fails when a frame comes before it.
    mutating func waitForRetry() async throws {
        while retries.isEmpty {
            switch try await nextItem() {
            case nil: throw StreamProblem(description: "the stream ended before its retry hint")
            case .frame(let frame): throw StreamProblem(description: "a frame came before the retry hint: \(frame)")
            default: continue
            }
        }
    }
}

/// A whole, non-streaming answer read by AsyncHTTPClient.
private struct PlainResponse {
    let status: HTTPResponseStatus
    let contentType: String?
    let text: String
    var json: JSONValue? { try? JSONValue.parse(Data(text.utf8)) }
}

private func plainRequest(port: Int, path: String) async throws -> PlainResponse {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = .GET
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
    let body = try await withTimeLimit(.seconds(5), "the body of \(path) was not complete") {
        try await response.body.collect(upTo: 1 << 20)
    }
    return PlainResponse(status: response.status, contentType: response.headers.first(name: "content-type"), text: String(buffer: body))
}
