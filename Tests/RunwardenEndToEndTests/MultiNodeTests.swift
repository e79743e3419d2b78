import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// Several `runwarden serve` processes on one PostgreSQL (SPEC §5), on loopback: any node
/// answers, a change through one wakes a long-poll on another, a runner fails over when its
/// node dies, and claims raced through two nodes hand each task out once.
@Suite("several server nodes on one PostgreSQL, end to end", .serialized, .timeLimit(.minutes(3)))
struct MultiNodeTests {
    @Test("node A killed mid-run: the runner fails over to node B, a long-poll on B saw every change, the run succeeds with no retry")
    func runnerFailsOverWhenANodeDies() async throws {
        let database = try await PostgresTestCluster.database()
        let nodes = try NodeSet()
        let nodeA = try await nodes.start(database: database, name: "a")
        let nodeB = try await nodes.start(database: database, name: "b")
        try nodes.startRunner(servers: [nodeA.url, nodeB.url])
        let runID = try await nodeB.client.createRun(
            try JSONValue.parse(
                Data(
                    #"""
                    {"workflow": "failover", "tasks": [
                      {"name": "first", "command": "sleep 1"},
                      {"name": "second", "command": "sleep 1.5", "needs": ["first"]},
                      {"name": "third", "command": "sleep 0.5", "needs": ["second"]}]}
                    """#.utf8))
        ).id

        // A long-poll on B wakes when the runner's claim, committed through A, lands.
        let created = try await nodeB.client.run(runID)
        let pollStarted = ContinuousClock.now
        let woken = try await nodeB.client.run(runID, afterVersion: created.version, wait: 20)
        let wakeDelay = ContinuousClock.now - pollStarted
        #expect(woken.version > created.version)
        #expect(wakeDelay < .seconds(5), "the long-poll on B took \(wakeDelay) to see a change made through A")

        // Kill A while `second` runs; the runner's next heartbeat and reports go to B.
        let second = try await nodes.waitForTask(runID, named: "second", status: "running", client: nodeB.client)
        #expect(second != nil, "task second never started")
        nodeA.process.signal(SIGKILL)
        _ = await nodeA.process.waitForExit()

        var version = woken.version
        var run = woken
        let deadline = ContinuousClock.now + .seconds(40)
        while !run.isTerminal, ContinuousClock.now < deadline {
            run = try await nodeB.client.run(runID, afterVersion: version, wait: 5)
            version = run.version
        }
        #expect(run.status == .succeeded, "run ended \(run.status): \(nodes.logs)")
        #expect(run.tasks?.map(\.attempt) == [1, 1, 1], "a task was retried: \(run.tasks?.map { "\($0.name)#\($0.attempt)" } ?? [])")
        let events = try await nodeB.client.events(runID: runID, limit: 500).events
        #expect(events.map(\.runSeq) == Array(1...events.count))
        #expect(!events.contains { $0.type == "task.retrying" })
    }

    @Test("a node that loses its database answers 503 on /readyz and recovers without a restart when it comes back")
    func readinessFollowsTheDatabase() async throws {
        let database = try await PostgresTestCluster.database()
        let name = String(database.split(separator: "/").last ?? "")
        let nodes = try NodeSet()
        let node = try await nodes.start(database: database, name: "a")
        #expect(try await node.readiness() == 200)

        // Take the database away: no new connections, and the node's open ones are cut.
        try await PostgresTestCluster.superuserSQL("ALTER DATABASE \(name) ALLOW_CONNECTIONS false")
        try await PostgresTestCluster.superuserSQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)'")
        let down = try await node.waitForReadiness(503, within: .seconds(20))
        let healthz = try await node.status(of: "/healthz")

        try await PostgresTestCluster.superuserSQL("ALTER DATABASE \(name) ALLOW_CONNECTIONS true")
        let up = try await node.waitForReadiness(200, within: .seconds(30))
        let created = try await node.client.createRun(
            try JSONValue.parse(Data(#"{"workflow": "after-outage", "tasks": [{"name": "t", "command": "true"}]}"#.utf8)))

        #expect(down == 503, "/readyz did not report the lost database: \(nodes.logs)")
        #expect(healthz == 200, "the process itself still answers")
        #expect(up == 200, "/readyz did not recover: \(nodes.logs)")
        #expect(created.status == .queued)
        #expect(node.process.isRunning)
    }

    @Test("claims raced through two nodes hand every task out exactly once")
    func claimsRacedThroughTwoNodes() async throws {
        let database = try await PostgresTestCluster.database()
        let nodes = try NodeSet()
        let nodeA = try await nodes.start(database: database, name: "a")
        let nodeB = try await nodes.start(database: database, name: "b")
        let taskCount = 60
        for index in 0..<taskCount {
            let body = #"{"workflow": "race-\#(index)", "tasks": [{"name": "t", "command": "true"}]}"#
            _ = try await (index.isMultiple(of: 2) ? nodeA : nodeB).client.createRun(try JSONValue.parse(Data(body.utf8)))
        }
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<8 {
                let client = (worker.isMultiple(of: 2) ? nodeA : nodeB).client
                group.addTask {
                    var mine: [String] = []
                    // Bounded: at most every task, and a 204 ends the loop.
                    for _ in 0..<taskCount {
                        guard case .task(let answer) = try await client.claim(runner: "racer-\(worker)", labels: [], wait: 0) else { break }
                        mine.append(answer.task.id)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(claimed.count == taskCount, "\(claimed.count) claims for \(taskCount) tasks")
        #expect(Set(claimed).count == claimed.count, "a task was handed out twice")
    }
}

/// `runwarden serve` nodes and a runner, each a real child process, in one temp folder.
final class NodeSet: @unchecked Sendable {
    struct Node {
        var process: ChildProcess
        var url: String
        var client: RunwardenClient { RunwardenClient(servers: [url], token: nil) }

        /// The HTTP status a GET of `path` answers, error or not.
        func status(of path: String) async throws -> Int {
            do {
                return try await client.send(.GET, path).status
            } catch ClientError.server(let status, _) {
                return status
            }
        }

        func readiness() async throws -> Int { try await status(of: "/readyz") }

        /// Polls `/readyz` until it answers `expected`, up to `limit`; the last status seen.
        func waitForReadiness(_ expected: Int, within limit: Duration) async throws -> Int {
            let deadline = ContinuousClock.now + limit
            var last = try await readiness()
            while last != expected, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                last = try await readiness()
            }
            return last
        }
    }

    let directory: URL
    private var started: [ChildProcess] = []

    init() throws {
        directory = try TestScratch.directory("nodes")
    }

    /// Starts a node on a free port and waits until it says where it listens.
    func start(database: String, name: String, lease: String = "5s") async throws -> Node {
        let process = try ChildProcess(["serve", "--port", "0", "--database", database, "--lease", lease], in: directory, name: "node-\(name)")
        started.append(process)
        if let url = await process.listeningURL(within: .seconds(30)) { return Node(process: process, url: url) }
        Issue.record("node \(name) did not start: \(process.output)")
        throw ClusterError.serverDidNotStart
    }

    @discardableResult
    func startRunner(servers: [String]) throws -> ChildProcess {
        let runner = try ChildProcess(
            [
                "runner", "--server", servers.joined(separator: ","), "--name", "host-a", "--concurrency", "2",
                "--work-dir", directory.appendingPathComponent("work").path, "--kill-grace", "2s",
            ], in: directory, name: "runner")
        started.append(runner)
        return runner
    }

    /// Polls until the named task of the run has `status`, up to 20 s.
    func waitForTask(_ runID: String, named name: String, status: String, client: RunwardenClient) async throws -> TaskSnapshot? {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if let task = try await client.run(runID).tasks?.first(where: { $0.name == name }), task.status.rawValue == status { return task }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    var logs: String { started.map(\.output).joined(separator: "\n---\n") }

    deinit {
        for process in started { process.stop() }
    }
}
