import Foundation
import RunwardenClient
import Testing

/// SPEC §6: the runner stops a task's whole process group on cancel, on `timeout_s`, when the
/// task ends leaving children behind, when it is cut off from the server for a lease, and when
/// it starts again after being killed — real server, real runner, real `sh` and `sleep`.
@Suite("the runner stops what its tasks started", .serialized, .timeLimit(.minutes(2)))
struct RunnerStopTests {
    /// A marker unique to this test's processes, found in /proc.
    private func marker() -> String { "sleep 600.\(Int.random(in: 100_000...999_999))" }

    /// The task's process group, found through the marker process.
    private func groupOf(_ marker: String) async throws -> Int32 {
        var pid: Int32?
        _ = await eventually(within: .seconds(10)) {
            pid = processes(matching: marker).first
            return pid != nil
        }
        return try #require(pid.flatMap(processGroup(of:)), "no process for \(marker)")
    }

    @Test("a task that closed its stdout and stderr is still canceled: canceled within 5 s, its group gone")
    func cancelWithClosedPipes() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let marker = marker()
        let runID = try await cluster.submit(
            #"{"workflow": "closed", "tasks": [{"name": "quiet", "command": "exec >/dev/null 2>&1; \#(marker)"}]}"#)
        try await cluster.waitUntilRunning(runID)
        let group = try await groupOf(marker)
        let started = ContinuousClock.now
        _ = try await cluster.client.cancel(runID)
        let run = try await cluster.waitForEnd(runID, within: .seconds(10))
        #expect(run.status == .canceled)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(groupIsGone(group))
        #expect(processes(matching: marker).isEmpty)
    }

    @Test("a task that closed its stdout and stderr still times out: timed_out within 5 s of timeout_s, its group gone")
    func timeoutWithClosedPipes() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let marker = marker()
        let runID = try await cluster.submit(
            #"{"workflow": "closed", "tasks": [{"name": "quiet", "timeout_s": 1, "command": "exec >/dev/null 2>&1; \#(marker)"}]}"#)
        try await cluster.waitUntilRunning(runID)
        let group = try await groupOf(marker)
        let run = try await cluster.waitForEnd(runID, within: .seconds(6))
        #expect(run.tasks?.first?.status == .timedOut)
        #expect(run.tasks?.first?.error?.code == "timeout")
        // The server fires timeout_s on its own too, so the run may end before the runner's
        // stop lands: give the stop its SIGTERM and a kill grace (2 s).
        #expect(await eventually(within: .seconds(4)) { groupIsGone(group) })
    }

    @Test("a task that exits leaving a child in the background succeeds, and the child is stopped before the report")
    func orphanStoppedWhenTaskEnds() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        try cluster.startRunner()
        let marker = marker()
        let runID = try await cluster.submit(
            #"{"workflow": "orphan", "tasks": [{"name": "leaves", "command": "\#(marker) & sleep 0.5; exit 0"}]}"#)
        let run = try await cluster.waitForEnd(runID, within: .seconds(20))
        #expect(run.status == .succeeded)
        // The report comes after the clean-up, so nothing may be left once the run ended.
        #expect(processes(matching: marker).isEmpty)
    }

    @Test("a runner cut off from the server for a whole lease stops its task by itself")
    func leaseLostStopsTask() async throws {
        let cluster = try Cluster()
        try await cluster.startServer(["--lease", "2s"])
        let runner = try cluster.startRunner()
        let marker = marker()
        let runID = try await cluster.submit(#"{"workflow": "cut", "tasks": [{"name": "long", "command": "\#(marker)"}]}"#)
        try await cluster.waitUntilRunning(runID)
        let group = try await groupOf(marker)
        await cluster.killServer()
        // A lease (2 s) without heartbeat, then SIGTERM; sleep dies at once.
        #expect(await eventually(within: .seconds(10)) { groupIsGone(group) })
        #expect(runner.output.contains("no heartbeat got through for a whole lease"))
        #expect(runner.isRunning)
    }

    @Test("a runner killed with SIGKILL mid-task and started again stops the task its previous life left running")
    func restartStopsLeftovers() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        let first = try cluster.startRunner()
        let marker = marker()
        let runID = try await cluster.submit(#"{"workflow": "left", "tasks": [{"name": "long", "command": "\#(marker)"}]}"#)
        try await cluster.waitUntilRunning(runID)
        let group = try await groupOf(marker)
        first.signal(SIGKILL)
        _ = await first.waitForExit()
        // Nothing else stops it: the task outlives its runner.
        #expect(!groupIsGone(group))
        let second = try cluster.startRunner()
        #expect(await eventually(within: .seconds(10)) { groupIsGone(group) })
        #expect(second.output.contains("stopping processes a previous run of this runner left behind"))
    }
}
