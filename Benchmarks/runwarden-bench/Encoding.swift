import ArgumentParser
import Foundation
import RunwardenCore

/// `runwarden-bench encode`: what rendering a snapshot costs through the API's writer (wire
/// type → `JSONValueEncoder.data`, fields in order, nulls written) against
/// Foundation's `JSONEncoder` (which keeps no field order and leaves nil fields out). In one
/// process, one after the other, on the same snapshots: the ratio is the figure.
struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Time snapshot encoding: the API's writer against JSONEncoder.")

    @Option(help: "Task counts of the runs rendered.") var tasks = "1,10,100,1000"
    @Option(help: "Seconds per encoder and size at most.") var seconds: Double = 2
    @Option(help: "Encodings per encoder and size at most.") var maxIterations = 200_000

    func run() throws {
        print("tasks  writer µs/run  JSONEncoder µs/run  JSONEncoder ÷ writer  bytes (writer / JSONEncoder)")
        for count in tasks.split(separator: ",").compactMap({ Int($0) }) {
            let snapshot = Self.snapshot(tasks: count)
            let iterations = max(1, min(maxIterations, 2_000_000 / max(count, 1)))
            let (writer, writerBytes) = time(iterations) { JSONValueEncoder.data(snapshot) }
            let encoder = JSONEncoder()
            let (foundation, foundationBytes) = time(iterations) { (try? encoder.encode(snapshot)) ?? Data() }
            print(
                String(
                    format: "%5d  %13.1f  %18.1f  %20.2f  %d / %d", count, writer, foundation, foundation / writer, writerBytes,
                    foundationBytes))
        }
    }

    /// Microseconds per encoding (bounded by `iterations` and `seconds`), and the size of one.
    private func time(_ iterations: Int, _ body: () -> Data) -> (Double, Int) {
        var size = body().count  // warm-up
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int64(seconds * 1000))
        var done = 0
        while done < iterations, ContinuousClock.now < deadline {
            size = body().count
            done += 1
        }
        let elapsed = ContinuousClock.now - start
        let micros = Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
        return (micros / Double(max(done, 1)), size)
    }

    /// A running run whose tasks are half done: errors, timestamps and blocked_by filled in.
    static func snapshot(tasks count: Int) -> RunwardenCore.RunSnapshot {
        let now = Timestamp(milliseconds: 1_767_225_600_000)
        let specs = (0..<count).map { index in
            TaskSpec(
                name: "task-\(index)", command: .argv(["make", "step-\(index)"]), env: ["CI": "1"], workspace: "repo",
                needs: index == 0 ? [] : ["task-\(index - 1)"], labels: ["linux"])
        }
        let definition = RunDefinition(run: RunSpec(workflow: "deploy", metadata: .object(["sha": .string("abc123")])), tasks: specs)
        var (run, _) = Run.create(
            definition, id: Identifier.make(.run, at: now), taskIDs: specs.map { _ in Identifier.make(.task, at: now) },
            eventID: Identifier.make(.evt, at: now), now: now)
        for index in run.tasks.indices where index < count / 2 {
            run.tasks[index].state.status = index % 5 == 4 ? .failed : .succeeded
            run.tasks[index].state.runner = "runner-1"
            run.tasks[index].state.startedAt = now
            run.tasks[index].state.finishedAt = now.adding(seconds: 3)
            run.tasks[index].state.exitCode = index % 5 == 4 ? 2 : 0
            if index % 5 == 4 { run.tasks[index].state.error = TaskError(.exitCode, "the command exited with code 2") }
        }
        return Snapshot.run(run, lockHolders: ["repo": run.tasks[0].id])
    }
}
