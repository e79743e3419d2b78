import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// SPEC §10 with the real `runwarden` server, runner and CLI on loopback.
@Suite("recovery and flow control, end to end", .timeLimit(.minutes(2)))
struct RecoveryEndToEndTests {
    @Test("runwarden rerun --failed runs exactly the failed task and its dependents, and the re-run succeeds")
    func rerunFailedWithARealRunner() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner(concurrency: 2)
        let ran = cluster.directory.appendingPathComponent("ran.txt").path
        let marker = cluster.directory.appendingPathComponent("second-time").path
        let record = #"echo \"$RUNWARDEN_RUN_ID $RUNWARDEN_TASK_NAME\" >> \#(ran)"#
        // c fails the first time and leaves a marker; with the marker it passes.
        let flaky = #"\#(record); if [ -f \#(marker) ]; then exit 0; fi; touch \#(marker); exit 1"#
        let runID = try await cluster.submit(
            """
            {"workflow": "recover", "tasks": [
              {"name": "a", "command": "\(record)"},
              {"name": "b", "command": "\(record)", "needs": ["a"]},
              {"name": "c", "command": "\(flaky)", "needs": ["a"]},
              {"name": "d", "command": "\(record)", "needs": ["c"]},
              {"name": "e", "command": "\(record)", "needs": ["b", "d"]}]}
            """)
        let first = try await cluster.waitForEnd(runID)
        #expect(first.status == .failed)
        #expect(first.tasks?.map { "\($0.name)=\($0.status.rawValue)" } == ["a=succeeded", "b=succeeded", "c=failed", "d=skipped", "e=skipped"])

        let cli = try ChildProcess(["rerun", runID, "--failed", "--server", cluster.url], in: cluster.directory, name: "rerun")
        #expect(await cli.waitForExit() == 0, "rerun said: \(cli.output)")
        let rerunID = cli.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Identifier.isWellFormed(rerunID, .run), "rerun printed \(cli.output)")
        let second = try await cluster.waitForEnd(rerunID)

        #expect(second.status == .succeeded)
        #expect(second.rerunOf == runID)
        #expect(second.runAttempt == 2)
        let lines = try String(contentsOfFile: ran, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ") }
        let namesRun = { (id: String) in Set(lines.filter { $0.first.map(String.init) == id }.compactMap { $0.last.map(String.init) }) }
        #expect(namesRun(runID) == ["a", "b", "c"])
        #expect(namesRun(rerunID) == ["c", "d", "e"])
        let firstByName = Dictionary(uniqueKeysWithValues: (first.tasks ?? []).map { ($0.name, $0) })
        for task in second.tasks ?? [] where ["a", "b"].contains(task.name) {
            #expect(task.reusedFrom == firstByName[task.name]?.id)
            #expect(task.finishedAt == firstByName[task.name]?.finishedAt)
        }
        #expect(try await cluster.client.run(runID).reruns == [rerunID])
    }

    @Test("an approval task approved through the CLI lets the run finish; one left alone ends timed_out")
    func approvalThroughTheCLI() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let body = #"{"workflow": "gated", "tasks": [{"name": "gate", "approval": {"timeout_s": 1}}, {"name": "deploy", "command": "true", "needs": ["gate"]}]}"#
        let approvedRun = try await cluster.submit(body.replacingOccurrences(of: #""timeout_s": 1"#, with: #""timeout_s": 600"#))
        let abandonedRun = try await cluster.submit(body)
        let gateID = try #require(try await cluster.client.run(approvedRun).tasks?.first?.id)

        let cli = try ChildProcess(
            ["approve", gateID, "--comment", "ship it", "--server", cluster.url], in: cluster.directory, name: "approve")
        #expect(await cli.waitForExit() == 0, "approve said: \(cli.output)")
        #expect(cli.output.contains("succeeded"))
        let approved = try await cluster.waitForEnd(approvedRun)
        let abandoned = try await cluster.waitForEnd(abandonedRun)

        #expect(approved.status == .succeeded)
        #expect(approved.tasks?.first?.approval?.comment == "ship it")
        #expect(approved.tasks?.last?.runner == "host-a")
        #expect(abandoned.status == .failed)
        #expect(abandoned.tasks?.map(\.status) == [.timedOut, .skipped])
        #expect(abandoned.tasks?.first?.error?.code == "timeout")
    }

    /// A keyed run: one task running `command`, under concurrency key `deploy-prod`, limit 1.
    static func keyedRun(_ name: String, command: String, onConflict: String = "queue") -> String {
        #"{"workflow": "\#(name)", "concurrency": {"key": "deploy-prod", "limit": 1, "on_conflict": "\#(onConflict)"}, "tasks": [{"name": "deploy", "command": "\#(command)"}]}"#
    }

    /// When the run's events say it ended, and when its first task was first handed to a runner.
    static func times(of runID: String, _ cluster: Cluster) async throws -> (firstDispatch: Timestamp?, end: Timestamp?) {
        let events = try await cluster.client.events(runID: runID).events
        let dispatched = events.first { $0.taskID != nil && $0.type == "task.dispatched" }
        let end = events.last { $0.runStatus?.isTerminal == true }
        return (dispatched.flatMap { Timestamp(iso8601: $0.timestamp) }, end.flatMap { Timestamp(iso8601: $0.timestamp) })
    }

    @Test("two runs with the same concurrency key and limit 1 never overlap, though the runner could run both")
    func concurrencyKeyRunsOneAtATime() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner(concurrency: 4)
        let first = try await cluster.submit(Self.keyedRun("first", command: "sleep 1"))
        let second = try await cluster.submit(Self.keyedRun("second", command: "sleep 1"))
        #expect(try await cluster.client.run(second).blockedBy?.heldBy == [first])

        #expect(try await cluster.waitForEnd(first).status == .succeeded)
        #expect(try await cluster.waitForEnd(second).status == .succeeded)
        let firstTimes = try await Self.times(of: first, cluster)
        let secondTimes = try await Self.times(of: second, cluster)
        let firstEnd = try #require(firstTimes.end)
        let secondStart = try #require(secondTimes.firstDispatch)
        #expect(secondStart >= firstEnd, "second started \(secondStart.iso8601), first ended \(firstEnd.iso8601)")
    }

    @Test("with cancel_running the older run ends canceled and the newer one runs once it has stopped")
    func cancelRunningReplacesTheOlderRun() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner(concurrency: 4)
        let older = try await cluster.submit(Self.keyedRun("older", command: "sleep 60"))
        var snapshot = try await cluster.client.run(older)
        for _ in 0..<200 where snapshot.tasks?.first?.status != .running {
            snapshot = try await cluster.client.run(older, afterVersion: snapshot.version, wait: 1)
        }
        #expect(snapshot.tasks?.first?.status == .running)
        let newer = try await cluster.submit(Self.keyedRun("newer", command: "true", onConflict: "cancel_running"))

        let olderEnd = try await cluster.waitForEnd(older)
        let newerEnd = try await cluster.waitForEnd(newer)
        #expect(olderEnd.status == .canceled)
        #expect(newerEnd.status == .succeeded)
        let stopped = try #require(try await Self.times(of: older, cluster).end)
        let started = try #require(try await Self.times(of: newer, cluster).firstDispatch)
        #expect(started >= stopped, "newer started \(started.iso8601), older ended \(stopped.iso8601)")
    }
}
