import Foundation
import RunwardenClient
import RunwardenTestSupport
import Testing

/// The real `runwarden` server and runner processes, on loopback, running real commands.
@Suite("runner and server, end to end", .timeLimit(.minutes(2)))
struct RunnerEndToEndTests {
    @Test("a three-task DAG sharing one workspace succeeds and its tasks never overlap in the workspace")
    func dagSharingWorkspace() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner(concurrency: 4)
        // Each task writes its start and end (ms since epoch) to a file in the shared workspace.
        let step = #"echo \"$RUNWARDEN_TASK_NAME start $(date +%s%3N)\" >> spans.txt; sleep 0.4; echo \"$RUNWARDEN_TASK_NAME end $(date +%s%3N)\" >> spans.txt"#
        let runID = try await cluster.submit(
            """
            {"workflow": "dag", "tasks": [
              {"name": "a", "command": "\(step)", "workspace": "shared"},
              {"name": "b", "command": "\(step)", "workspace": "shared", "needs": ["a"]},
              {"name": "c", "command": "\(step)", "workspace": "shared", "needs": ["a"]}]}
            """)
        let run = try await cluster.waitForEnd(runID)
        #expect(run.status == .succeeded)
        #expect(run.tasks?.allSatisfy { $0.runner == "host-a" && $0.exitCode == 0 } == true)

        let lines = try String(contentsOf: cluster.workspace("shared").appendingPathComponent("spans.txt"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: " ") }
        var spans: [String: (start: Int, end: Int)] = [:]
        for line in lines where line.count == 3 {
            let name = String(line[0])
            let time = Int(line[2]) ?? 0
            if line[1] == "start" { spans[name, default: (0, 0)].start = time } else { spans[name, default: (0, 0)].end = time }
        }
        #expect(spans.count == 3)
        let ordered = spans.values.sorted { $0.start < $1.start }
        for (earlier, later) in zip(ordered, ordered.dropFirst()) {
            #expect(earlier.end <= later.start, "tasks overlapped in the workspace: \(spans)")
        }
    }

    @Test("a task that exits 3 fails its run with exit code 3 and the tail of its stderr")
    func failingTask() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(
            #"{"workflow": "fail", "tasks": [{"name": "compile", "command": ["sh", "-c", "echo 'error: missing semicolon' >&2; exit 3"]}]}"#)
        let run = try await cluster.waitForEnd(runID)
        #expect(run.status == .failed)
        let task = try #require(run.tasks?.first)
        #expect(task.status == .failed)
        #expect(task.exitCode == 3)
        #expect(task.error?.code == "exit_code")
        #expect(task.error?.message.contains("missing semicolon") == true)
        #expect(run.error?.code == "task_failed")
        #expect(run.error?.taskID == task.id)
    }

    @Test("a command that does not exist is reported failed with launch_failed")
    func launchFailure() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(#"{"workflow": "nope", "tasks": [{"name": "x", "command": ["/no/such/program"]}]}"#)
        let run = try await cluster.waitForEnd(runID)
        #expect(run.status == .failed)
        #expect(run.tasks?.first?.error?.code == "launch_failed")
        #expect(run.tasks?.first?.error?.retryable == true)
    }

    @Test("a task past its timeout ends timed_out, its run fails, and its process group is gone")
    func timeout() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let marker = "sleep 731.\(Int.random(in: 100...999))"
        // The shell starts a child and a grandchild: both must be stopped.
        let runID = try await cluster.submit(
            #"{"workflow": "slow", "tasks": [{"name": "slow", "timeout_s": 1, "command": "\#(marker) & \#(marker); wait"}]}"#)
        let run = try await cluster.waitForEnd(runID)
        #expect(run.status == .failed)
        #expect(run.tasks?.first?.status == .timedOut)
        #expect(run.tasks?.first?.error?.code == "timeout")
        #expect(await eventually(within: .seconds(5)) { processes(matching: marker).isEmpty })
    }

    @Test("canceling a run of sleep 60 ends it canceled within 5 s and leaves no child process")
    func cancel() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let marker = "sleep 60.\(Int.random(in: 100...999))"
        let runID = try await cluster.submit(#"{"workflow": "long", "tasks": [{"name": "long", "command": "\#(marker)"}]}"#)
        var run = try await cluster.client.run(runID)
        while run.tasks?.first?.status != .running {
            run = try await cluster.client.run(runID, afterVersion: run.version, wait: 5)
        }
        let started = ContinuousClock.now
        _ = try await cluster.client.cancel(runID)
        run = try await cluster.waitForEnd(runID, within: .seconds(10))
        #expect(run.status == .canceled)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(processes(matching: marker).isEmpty)
    }

    @Test("a server killed and restarted while a task runs loses no report and the run succeeds")
    func serverRestart() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let runID = try await cluster.submit(
            #"{"workflow": "restart", "tasks": [{"name": "a", "command": "sleep 2"}, {"name": "b", "command": "echo b", "needs": ["a"]}]}"#)
        var run = try await cluster.client.run(runID)
        while run.tasks?.first?.status != .running {
            run = try await cluster.client.run(runID, afterVersion: run.version, wait: 5)
        }
        await cluster.killServer()
        try await Task.sleep(for: .seconds(3))  // task a ends while the server is down
        try await cluster.startServer()
        run = try await cluster.waitForEnd(runID)
        #expect(run.status == .succeeded)

        let events = try await cluster.client.events(runID: runID).events
        #expect(events.map(\.runSeq) == Array(1...events.count))
        let firstTask = try #require(run.tasks?.first)
        #expect(events.filter { $0.taskID == firstTask.id }.map(\.type) == ["task.dispatched", "task.running", "task.succeeded"])
    }

    @Test("the example workflow in examples/ runs to success and `runwarden wait` exits 0")
    func exampleWorkflow() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner(labels: "linux")
        let example = packageRoot.appendingPathComponent("examples/hello.yaml")
        let submit = try ChildProcess(["submit", example.path, "--server", cluster.url], in: cluster.directory, name: "submit")
        #expect(await submit.waitForExit() == 0)
        let runID = submit.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(runID.hasPrefix("run_"))
        let wait = try ChildProcess(["wait", runID, "--server", cluster.url, "--timeout", "60"], in: cluster.directory, name: "wait")
        #expect(await wait.waitForExit(within: .seconds(60)) == 0)
        #expect(wait.output.contains("succeeded 100%"))
    }

    @Test("runwarden wait exits 1 for a failed run and status names the failing task")
    func waitExitCodeForFailure() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let example = packageRoot.appendingPathComponent("examples/failing.json")
        let runID = try await cluster.client.createRun(try WorkflowFile.load(path: example.path)).id
        let wait = try ChildProcess(["wait", runID, "--server", cluster.url, "--timeout", "30"], in: cluster.directory, name: "wait")
        #expect(await wait.waitForExit(within: .seconds(40)) == 1)
        let status = try ChildProcess(["status", runID, "--server", cluster.url], in: cluster.directory, name: "status")
        #expect(await status.waitForExit() == 0)
        #expect(status.output.contains("compile  failed"))
        #expect(status.output.contains("package  skipped"))
        let missing = try ChildProcess(["status", "run_missing", "--server", cluster.url], in: cluster.directory, name: "missing")
        #expect(await missing.waitForExit() == 1)
        #expect(missing.output.contains("run_not_found"))
    }

    @Test("a runner killed with SIGKILL mid-task loses its lease; another runner runs the retry and the run succeeds")
    func runnerKilledMidTask() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--lease", "2s"])
        let doomed = try cluster.startRunner(name: "doomed")
        let runID = try await cluster.submit(
            // Long enough that the runner is surely killed mid-task even on a loaded machine.
            #"{"workflow": "retry", "tasks": [{"name": "a", "command": "sleep 4", "workspace": "ws", "retries": 1}]}"#)
        var run = try await cluster.client.run(runID)
        while run.tasks?.first?.status != .running {
            run = try await cluster.client.run(runID, afterVersion: run.version, wait: 5)
        }
        doomed.signal(SIGKILL)
        _ = await doomed.waitForExit()
        try cluster.startRunner(name: "rescuer")
        run = try await cluster.waitForEnd(runID, within: .seconds(30))
        #expect(run.status == .succeeded)
        let task = try #require(run.tasks?.first)
        if run.status != .succeeded {
            let events = try await cluster.client.events(runID: runID).events
            Issue.record("events: \(events.map { "\($0.type) \($0.attempt ?? 0) \($0.error?.message ?? "")" })")
        }
        #expect(task.attempt == 2)
        #expect(task.runner == "rescuer")
        let events = try await cluster.client.events(runID: runID).events
        #expect(events.contains { $0.type == "task.retrying" })
    }

    @Test("a runner told to stop with SIGTERM lets its running task finish, reports it, and exits 0")
    func runnerGracefulShutdown() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        let runner = try cluster.startRunner()
        let runID = try await cluster.submit(#"{"workflow": "graceful", "tasks": [{"name": "a", "command": "sleep 1"}]}"#)
        var run = try await cluster.client.run(runID)
        while run.tasks?.first?.status != .running {
            run = try await cluster.client.run(runID, afterVersion: run.version, wait: 5)
        }
        runner.signal(SIGTERM)
        #expect(await runner.waitForExit(within: .seconds(20)) == 0)
        run = try await cluster.client.run(runID)
        #expect(run.status == .succeeded)
    }
}
