import Foundation
import HTTPTypes
import HummingbirdTesting
import RunwardenCore
import Testing

/// The runner registry over real HTTP (SPEC §8): items, drain and resume, goodbye, runner
/// events in the global feed, errors.
@Suite("runner registry API")
struct RunnerRegistryAPITests {
    static let drain = HTTPField.Name(RunnerItem.drainHeader)!

    @Test("a runner appears at its first claim with what the claim says, and running lists the task it holds")
    func claimRegisters() async throws {
        try await withApp(setup: .live) { client in
            #expect(try await client.getJSON("/v1/runners")["items"]?.asArray?.isEmpty == true)
            let empty = try await client.send(
                .post, "/v1/runners/host-a/claim", json: #"{"labels":["linux"],"version":"1.4.0","hostname":"build-01","concurrency":2}"#)
            #expect(empty.status == .noContent)
            #expect(empty.headers[Self.drain] == nil)
            var item = try await client.getJSON("/v1/runners/host-a")
            #expect(item["name"]?.asString == "host-a")
            #expect(item["status"]?.asString == "online")
            #expect(item["labels"] == .array([.string("linux")]))
            #expect(item["version"]?.asString == "1.4.0")
            #expect(item["hostname"]?.asString == "build-01")
            #expect(item["concurrency"]?.asInt == 2)
            #expect(item["draining"]?.asBool == false)
            #expect(item["running"]?.asArray?.isEmpty == true)
            #expect(item["first_seen_at"]?.asString != nil)

            _ = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID(runner: "host-a", labels: ["linux"])
            item = try await client.getJSON("/v1/runners/host-a")
            #expect(item["running"] == .array([.string(taskID)]))
            #expect(item["version"]?.asString == "1.4.0", "a claim without a version keeps the one given before")
            #expect(try await client.getJSON("/v1/runners")["items"]?.asArray?.count == 1)

            // Its events are in the global feed, with no run.
            let feed = try await client.getJSON("/v1/events?after=0")
            let online = try #require(feed["events"]?.asArray?.first { $0["type"]?.asString == "runner.online" })
            #expect(online["runner"]?.asString == "host-a")
            #expect(online["run_id"]?.isNull == true)
            #expect(online["run_seq"]?.isNull == true)
            #expect(online["status"]?.asString == "online")
            #expect(feed["events"]?.asArray?.first { $0["type"]?.asString == "run.created" }?["runner"] == nil)
        }
    }

    @Test("a drained runner's claims get 204 with Runwarden-Drain: true and leave the task queued; resumed, it gets the task")
    func drainAndResume() async throws {
        try await withApp(setup: .live) { client in
            #expect(try await client.claim(runner: "host-a") == nil)
            let drained = try await client.send(.post, "/v1/runners/host-a/drain")
            #expect(drained.status == .accepted)
            #expect(try drained.json()["draining"]?.asBool == true)
            let run = try await client.createRun(oneTaskRun)
            let refused = try await client.send(.post, "/v1/runners/host-a/claim?wait=0.2", json: "{}")
            #expect(refused.status == .noContent)
            #expect(refused.headers[Self.drain] == "true")
            let runID = try #require(run["id"]?.asString)
            #expect(try await client.snapshot(runID).task(named: "build")?["status"]?.asString == "queued")
            #expect(try await client.getJSON("/v1/runners/host-a")["draining"]?.asBool == true)

            let resumed = try await client.send(.post, "/v1/runners/host-a/resume")
            #expect(resumed.status == .accepted)
            #expect(try resumed.json()["draining"]?.asBool == false)
            #expect(try await client.claim(runner: "host-a") != nil)
        }
    }

    @Test("a resume wakes the drained runner's waiting claim")
    func resumeWakesWaitingClaim() async throws {
        try await withApp { client in
            _ = try await client.claim(runner: "host-a")
            _ = try await client.send(.post, "/v1/runners/host-a/drain")
            _ = try await client.createRun(oneTaskRun)
            let started = ContinuousClock.now
            async let waiting = client.send(.post, "/v1/runners/host-a/claim?wait=20", json: "{}")
            try await waitUntilParked(client)
            _ = try await client.send(.post, "/v1/runners/host-a/resume")
            let answer = try await waiting
            #expect(answer.status == .ok)
            #expect(seconds(since: started) < 10)
        }
    }

    @Test("a drain answers the runner's waiting claim at once with Runwarden-Drain")
    func drainAnswersWaitingClaim() async throws {
        try await withApp { client in
            _ = try await client.claim(runner: "host-a")
            let started = ContinuousClock.now
            async let waiting = client.send(.post, "/v1/runners/host-a/claim?wait=20", json: "{}")
            try await waitUntilParked(client)
            _ = try await client.send(.post, "/v1/runners/host-a/drain")
            let answer = try await waiting
            #expect(answer.status == .noContent)
            #expect(answer.headers[.init("Runwarden-Drain")!] == "true")
            #expect(seconds(since: started) < 10, "the claim waited out its long-poll: \(seconds(since: started)) s")
        }
    }

    @Test("a goodbye shows the runner offline at once, with one runner.offline event")
    func goodbye() async throws {
        try await withApp(setup: .live) { client in
            _ = try await client.claim(runner: "host-a")
            let bye = try await client.send(.post, "/v1/runners/host-a/goodbye")
            #expect(bye.status == .accepted)
            #expect(try bye.json()["status"]?.asString == "offline")
            #expect(try await client.getJSON("/v1/runners/host-a")["status"]?.asString == "offline")
            #expect(try await client.getJSON("/v1/events?after=0").eventTypes == ["runner.online", "runner.offline"])
        }
    }

    @Test("unknown runners are 404 runner_not_found, bad names on claim 422, and each route needs its own token")
    func errors() async throws {
        try await withTokenApp { client in
            try expectError(try await client.send(.get, "/v1/runners/ghost", token: Tokens.client), .notFound, "runner_not_found")
            try expectError(try await client.send(.post, "/v1/runners/ghost/drain", token: Tokens.client), .notFound, "runner_not_found")
            try expectError(try await client.send(.post, "/v1/runners/ghost/resume", token: Tokens.client), .notFound, "runner_not_found")
            try expectError(try await client.send(.post, "/v1/runners/ghost/goodbye", token: Tokens.runner), .notFound, "runner_not_found")
            try expectError(try await client.send(.get, "/v1/runners/-x", token: Tokens.client), .notFound, "runner_not_found")
            for bad in ["-x", ".hidden", "_a", String(repeating: "a", count: 129)] {
                let claim = try await client.send(.post, "/v1/runners/\(bad)/claim", json: "{}", token: Tokens.runner)
                try expectError(claim, .unprocessableContent, "validation_failed")
            }
            let badBody = try await client.send(
                .post, "/v1/runners/host-a/claim", json: #"{"concurrency":0,"version":7}"#, token: Tokens.runner)
            try expectError(badBody, .unprocessableContent, "validation_failed")
            #expect(try await client.getJSON("/v1/runners", token: Tokens.client)["items"]?.asArray?.isEmpty == true, "bad input registers nothing")
            try expectError(try await client.send(.get, "/v1/runners", token: Tokens.runner), .forbidden, "forbidden")
            try expectError(try await client.send(.post, "/v1/runners/ghost/drain", token: Tokens.runner), .forbidden, "forbidden")
            try expectError(try await client.send(.post, "/v1/runners/ghost/goodbye", token: Tokens.client), .forbidden, "forbidden")
        }
    }

    @Test("/metrics shows runners by status; a webhook may subscribe to runner.*")
    func metricsAndSubscriptions() async throws {
        try await withApp { client in
            _ = try await client.claim(runner: "host-a")
            _ = try await client.claim(runner: "host-b")
            _ = try await client.send(.post, "/v1/runners/host-b/goodbye")
            let samples = try await scrapeMetrics(client)
            #expect(samples[#"runwarden_runners{status="online"}"#] == 1)
            #expect(samples[#"runwarden_runners{status="offline"}"#] == 1)
            #expect(samples[#"runwarden_runners{status="lost"}"#] == 0)
            let hook = try await client.send(.post, "/v1/webhooks", json: #"{"url":"https://hooks.example/r","events":["runner.*","runner.lost"]}"#)
            #expect(hook.status == .created)
            try expectError(
                try await client.send(.post, "/v1/webhooks", json: #"{"url":"https://hooks.example/r","events":["runner.gone"]}"#),
                .unprocessableContent, "validation_failed")
        }
    }
}
