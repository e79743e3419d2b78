import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// The runner registry with real runner processes (SPEC §8): a runner killed with SIGKILL shows
/// `lost` and a real receiver gets one `runner.lost`; one stopped with SIGTERM says goodbye and
/// shows `offline`; a drained runner takes nothing while another takes the work; two nodes on
/// one PostgreSQL show one registry.
@Suite("runner registry, end to end", .serialized, .timeLimit(.minutes(3)))
struct RunnerRegistryEndToEndTests {
    /// A real webhook receiver (python3's http.server) answering 200 on `/hook`.
    private func receiver(in directory: URL) async throws -> HostileServer {
        try await HostileServer(routes: .object(["POST /hook": .array([.object(["status": .int(200), "body": .object([])])])]), in: directory)
    }

    private func receiver(in cluster: Cluster) async throws -> HostileServer { try await receiver(in: cluster.directory) }

    /// The `runner.*` types the receiver got for `runner`.
    private func received(_ receiver: HostileServer, runner: String) -> [String] {
        receiver.requests.compactMap { request -> String? in
            guard let body = request["body"]?.faultString, let payload = try? JSONValue.parse(Data(body.utf8)),
                payload["runner"] == .string(runner)
            else { return nil }
            return payload["type"]?.faultString
        }
    }

    private func subscribe(_ client: RunwardenClient, _ receiver: HostileServer) async throws {
        let body = try JSONValue.parse(Data(#"{"url": "\#(receiver.url)/hook", "events": ["runner.*"]}"#.utf8))
        let answer = try await client.send(.POST, "/v1/webhooks", body: body)
        #expect(answer.status == 201)
    }

    private func subscribe(_ cluster: Cluster, _ receiver: HostileServer) async throws { try await subscribe(cluster.client, receiver) }

    /// The types of the global feed's events, through `client`.
    private func feedTypes(_ client: RunwardenClient) async throws -> [String] {
        let feed = try await client.send(.GET, "/v1/events", query: [("after", "0"), ("limit", "500")])
        return try JSONValue.parse(feed.body)["events"]?.faultArray.compactMap { $0["type"]?.faultString } ?? []
    }

    private func status(_ cluster: Cluster, _ name: String) async -> String? {
        try? await cluster.client.runner(name).status.rawValue
    }

    @Test("a runner killed with SIGKILL while it holds a task shows lost within a lease and a reaper pass; one runner.lost reaches the receiver")
    func killedRunnerIsLost() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--lease", "2s"])
        let receiver = try await receiver(in: cluster)
        try await subscribe(cluster, receiver)
        let runner = try cluster.startRunner(name: "doomed")
        let marker = "sleep 600.\(Int.random(in: 100_000...999_999))"
        defer { for pid in processes(matching: marker) { kill(pid, SIGKILL) } }
        let runID = try await cluster.submit(#"{"workflow": "doomed", "tasks": [{"name": "long", "labels": ["linux"], "command": "\#(marker)"}]}"#)
        try await cluster.waitUntilRunning(runID)
        let online = try await cluster.client.runner("doomed")
        #expect(online.status == .online)
        #expect(online.running.count == 1)
        #expect(online.version == Release.version)
        #expect(online.concurrency == 4)
        #expect(online.hostname?.isEmpty == false)

        runner.signal(SIGKILL)
        _ = await runner.waitForExit()
        let killed = ContinuousClock.now
        // A lease (2 s) of silence, then the reaper's next pass (every 1 s).
        #expect(await eventually(within: .seconds(8)) { await status(cluster, "doomed") == "lost" })
        let seenLost = ContinuousClock.now - killed
        #expect(seenLost < .seconds(5), "lost after \(seenLost)")
        #expect(await eventually(within: .seconds(10)) { received(receiver, runner: "doomed").contains("runner.lost") })
        // Several more reaper passes (and the task's own lease loss) must not announce it again.
        try await Task.sleep(for: .seconds(3))
        #expect(received(receiver, runner: "doomed") == ["runner.online", "runner.lost"])
        #expect(try await feedTypes(cluster.client).filter { $0 == "runner.lost" }.count == 1)
    }

    @Test("a runner stopped with SIGTERM says goodbye: offline at once, and no runner.lost ever")
    func stoppedRunnerIsOffline() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--lease", "10s"])
        let receiver = try await receiver(in: cluster)
        try await subscribe(cluster, receiver)
        let runner = try cluster.startRunner(name: "polite")
        #expect(await eventually(within: .seconds(10)) { await status(cluster, "polite") == "online" })
        let runID = try await cluster.submit(#"{"workflow": "polite", "tasks": [{"name": "short", "labels": ["linux"], "command": "sleep 0.5"}]}"#)
        #expect(try await cluster.waitForEnd(runID).status == .succeeded)

        let stopped = ContinuousClock.now
        runner.signal(SIGTERM)
        #expect(await runner.waitForExit() == 0)
        // Well within the 10 s lease: only the goodbye can have made it offline.
        #expect(await status(cluster, "polite") == "offline")
        #expect(ContinuousClock.now - stopped < .seconds(8))
        #expect(await eventually(within: .seconds(10)) { received(receiver, runner: "polite") == ["runner.online", "runner.offline"] })
        #expect(runner.output.contains("runner stopped"))
        #expect(!received(receiver, runner: "polite").contains("runner.lost"))
    }

    @Test("a drained runner takes no new task while another takes them all; runwarden drain, runners and resume on the command line")
    func drainedRunnerTakesNothing() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        let drained = try cluster.startRunner(name: "host-a")
        #expect(await eventually(within: .seconds(10)) { await status(cluster, "host-a") == "online" })
        let drain = try ChildProcess(["drain", "host-a", "--server", cluster.url], in: cluster.directory, name: "cli-drain")
        #expect(await drain.waitForExit() == 0)
        #expect(drain.output.contains("host-a online (draining)"))
        try cluster.startRunner(name: "host-b")

        var runIDs: [String] = []
        for index in 0..<3 {
            runIDs.append(try await cluster.submit(#"{"workflow": "moved-\#(index)", "tasks": [{"name": "t", "labels": ["linux"], "command": "true"}]}"#))
        }
        for runID in runIDs {
            let run = try await cluster.waitForEnd(runID)
            #expect(run.status == .succeeded)
            #expect(run.tasks?.first?.runner == "host-b")
        }
        #expect(await drained.waitForOutput("runner is draining", within: .seconds(30)))

        let list = try ChildProcess(["runners", "--server", cluster.url], in: cluster.directory, name: "cli-runners")
        #expect(await list.waitForExit() == 0)
        let lines = list.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true)
        #expect(lines.contains { $0.hasPrefix("host-a") && $0.contains("online (draining)") && $0.contains("linux") })
        #expect(lines.contains { $0.hasPrefix("host-b") && $0.contains("online") && !$0.contains("draining") })

        let resume = try ChildProcess(["resume", "host-a", "--server", cluster.url], in: cluster.directory, name: "cli-resume")
        #expect(await resume.waitForExit() == 0)
        #expect(try await cluster.client.runner("host-a").draining == false)
        let unknown = try ChildProcess(["drain", "ghost", "--server", cluster.url], in: cluster.directory, name: "cli-ghost")
        #expect(await unknown.waitForExit() != 0)
        #expect(unknown.output.contains("runner_not_found"))
    }

    @Test("a revoked per-runner token is refused on the runner's next heartbeat, and its task is retried elsewhere after the lease")
    func revokedTokenLosesItsTasks() async throws {
        let cluster = try Cluster()
        cluster.clientToken = "client-secret"
        try await cluster.startServer(["--lease", "2s", "--client-token", "client-secret", "--runner-token", "shared-secret"])
        let created = try await cluster.client.send(
            .POST, "/v1/runner-tokens",
            body: try JSONValue.parse(Data(#"{"description": "one host", "runner_names": ["scoped-*"], "labels": ["linux"]}"#.utf8)))
        let token = try JSONValue.parse(created.body)
        let secret = try #require(token["token"]?.faultString)
        let id = try #require(token["id"]?.faultString)
        let scoped = try cluster.startRunner(name: "scoped-1", extraArguments: ["--token", secret])
        let marker = "sleep 600.\(Int.random(in: 100_000...999_999))"
        defer { for pid in processes(matching: marker) { kill(pid, SIGKILL) } }
        let runID = try await cluster.submit(
            #"{"workflow": "revoked", "tasks": [{"name": "long", "labels": ["linux"], "retries": 1, "command": "if [ \"$RUNWARDEN_ATTEMPT\" = 1 ]; then \#(marker); fi"}]}"#)
        try await cluster.waitUntilRunning(runID)
        #expect(try await cluster.client.run(runID).tasks?.first?.runner == "scoped-1")

        #expect(try await cluster.client.send(.DELETE, "/v1/runner-tokens/\(id)").status == 204)
        #expect(await scoped.waitForOutput("unauthorized", within: .seconds(10)), "the next heartbeat was not refused: \(scoped.output)")
        try cluster.startRunner(name: "shared-1", extraArguments: ["--token", "shared-secret"])
        let run = try await cluster.waitForEnd(runID, within: .seconds(30))
        #expect(run.status == .succeeded)
        #expect(run.tasks?.first?.attempt == 2)
        #expect(run.tasks?.first?.runner == "shared-1")
    }

    @Test("two server nodes on one PostgreSQL show the same registry: contact through A, read and drain through B")
    func twoNodesOneRegistry() async throws {
        let database = try await PostgresTestCluster.database()
        let nodes = try NodeSet()
        // A lease of a minute: node A's contact then vouches for 6 s (`ContactLedger`), longer than
        // the wait below, so only B's notification can tell A of the drain in time.
        let nodeA = try await nodes.start(database: database, name: "a", lease: "60s")
        let nodeB = try await nodes.start(database: database, name: "b", lease: "60s")
        let facts = RunwardenClient.RunnerFacts(version: "9.9.9", hostname: "h1", concurrency: 3)
        #expect(try await nodeA.client.claim(runner: "shared", labels: ["gpu"], wait: 0, facts: facts) == .nothing)

        let seen = try await nodeB.client.runner("shared")
        #expect(seen.status == .online)
        #expect(seen.labels == ["gpu"])
        #expect(seen.version == "9.9.9")
        #expect(try await nodeB.client.runners().items.map(\.name) == ["shared"])
        #expect(try await nodeB.client.setDraining(true, runner: "shared").draining)
        // B's drain reaches A as a `runners` notification, in milliseconds.
        let deadline = ContinuousClock.now + .seconds(3)
        var outcome = try await nodeA.client.claim(runner: "shared", labels: ["gpu"], wait: 0, facts: facts)
        while outcome != .draining, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            outcome = try await nodeA.client.claim(runner: "shared", labels: ["gpu"], wait: 0, facts: facts)
        }
        #expect(outcome == .draining, "node A's claims never heard of node B's drain")
        #expect(try await nodeA.client.runner("shared").draining)
        #expect(try await feedTypes(nodeB.client) == ["runner.online"], "one node's contact, announced once")
    }

    @Test("a runner killed with SIGKILL under two nodes on PostgreSQL is announced lost once, by whichever node's reaper came first")
    func killedRunnerUnderTwoNodesIsLostOnce() async throws {
        let database = try await PostgresTestCluster.database()
        let nodes = try NodeSet()
        let nodeA = try await nodes.start(database: database, name: "a")
        let nodeB = try await nodes.start(database: database, name: "b")
        let receiver = try await receiver(in: nodes.directory)
        try await subscribe(nodeA.client, receiver)
        let runner = try nodes.startRunner(servers: [nodeA.url, nodeB.url])
        let marker = "sleep 600.\(Int.random(in: 100_000...999_999))"
        defer { for pid in processes(matching: marker) { kill(pid, SIGKILL) } }
        let runID = try await nodeB.client.createRun(
            try JSONValue.parse(Data(#"{"workflow": "two-nodes", "tasks": [{"name": "long", "command": "\#(marker)"}]}"#.utf8))
        ).id
        #expect(try await nodes.waitForTask(runID, named: "long", status: "running", client: nodeB.client) != nil)
        runner.signal(SIGKILL)
        _ = await runner.waitForExit()
        // A lease (5 s on these nodes) of silence, then a reaper pass on either node.
        #expect(await eventually(within: .seconds(15)) { (try? await nodeA.client.runner("host-a").status) == .lost })
        #expect(try await nodeB.client.runner("host-a").status == .lost)
        #expect(await eventually(within: .seconds(10)) { received(receiver, runner: "host-a").contains("runner.lost") })
        // Both nodes' reapers keep passing (every second): none may announce it again.
        try await Task.sleep(for: .seconds(3))
        #expect(received(receiver, runner: "host-a") == ["runner.online", "runner.lost"])
        #expect(try await feedTypes(nodeA.client).filter { $0.hasPrefix("runner.") } == ["runner.online", "runner.lost"])
    }
}
