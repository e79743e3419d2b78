import Foundation
import RunwardenCore

/// backlog: one-task lifecycles/s (LifecycleWorkload, concurrency 16) on a fresh server, then
/// again on the same server after B queued tasks that no lifecycle runner can take (every task
/// asks for the label `unclaimable-backlog`, which those runners do not have) — what a queue of
/// waiting work costs the claims that can proceed.
enum BacklogWorkload {
    static let label = "unclaimable-backlog"
    static let concurrency = 16

    /// One run of `size` tasks that only a runner labelled `unclaimable-backlog` may take.
    static func runBody(size: Int) -> String {
        var body = #"{"workflow":"bench-backlog","tasks":["#
        body.reserveCapacity(size * 64 + 64)
        for index in 0..<size {
            if index > 0 { body += "," }
            body += #"{"name":"b\#(index)","command":["true"],"labels":["\#(label)"]}"#
        }
        return body + "]}"
    }

    static func run(
        _ client: BenchClient, server: ServerProcess, backlog: Int, runSize: Int, duration: Duration, maxIterations: Int, settle: Double
    ) async throws -> JSONValue {
        await server.waitUntilIdle()
        let (withoutBacklog, withoutTally) = await LifecycleWorkload.level(
            client, concurrency: concurrency, duration: duration, maxIterations: maxIterations, keepIDs: 0, serverPID: server.pid)
        line("without backlog", withoutBacklog, withoutTally)

        // The backlog: runs of `runSize` tasks (the last one the remainder), 4 creates at a time.
        let sizes = stride(from: 0, to: backlog, by: max(1, runSize)).map { min(runSize, backlog - $0) }
        let bodies = Dictionary(Set(sizes).map { ($0, runBody(size: $0)) }, uniquingKeysWith: { first, _ in first })
        let next = Locked(0)
        let queued = Counter()
        let bound = Bound(maxIterations: sizes.count, duration: .seconds(600))
        let (created, createSeconds) = await runLevel(concurrency: 4, bound: bound) { _, _, tally in
            let index = next.withLock { value in
                defer { value += 1 }
                return value
            }
            guard index < sizes.count, let body = bodies[sizes[index]] else { return }
            do {
                let answer = try await client.send(.POST, "/v1/runs", body: body, timeout: .seconds(120))
                guard answer.status == 202 else { return tally.fail("\(answer.status)", step: "create", sample: answer.text) }
                queued.add(sizes[index])
                tally.succeed()
            } catch {
                tally.fail("error:\(describe(error))", step: "create", sample: "\(error)")
            }
        }
        say("  backlog \(backlog): \(queued.value) unclaimable tasks queued in \(created.ok) runs in \(fmt(createSeconds)) s; failures \(failuresText(created.failures)) \(created.failureSamples.values.first.map { String($0.prefix(160)) } ?? "")")
        await server.waitUntilIdle()
        try await Task.sleep(for: .seconds(settle))

        let (withBacklog, withTally) = await LifecycleWorkload.level(
            client, concurrency: concurrency, duration: duration, maxIterations: maxIterations, keepIDs: 0, serverPID: server.pid)
        line("with \(queued.value) queued", withBacklog, withTally)

        let withoutRate = withoutBacklog["runs_per_s"]?.doubleValue ?? 0
        let ratio = withoutRate > 0 ? (withBacklog["runs_per_s"]?.doubleValue ?? 0) / withoutRate : nil
        // A backlog the server did not (fully) take (e.g. 422: runs larger than it accepts) is no
        // measurement of the target.
        let complete = queued.value == backlog
        say("  backlog \(backlog): with/without \(fmt(ratio, 3)) (target ≥ 0.8)\(complete ? "" : "; backlog INCOMPLETE: \(queued.value) of \(backlog) queued")")
        return .object([
            "backlog_tasks": .int(Int64(backlog)), "run_size": .int(Int64(runSize)), "concurrency": .int(Int64(concurrency)),
            "backlog_runs": .int(Int64(sizes.count)), "backlog_runs_created": .int(Int64(created.ok)),
            "backlog_tasks_queued": .int(Int64(queued.value)), "backlog_complete": .bool(complete),
            "backlog_create_s": number(createSeconds, digits: 3),
            "backlog_create_failures": dictJSON(created.failures), "backlog_create_failure_samples": dictJSON(created.failureSamples),
            "without": withoutBacklog, "with": withBacklog,
            "with_over_without": number(ratio, digits: 3),
            "target": .string("with_over_without >= 0.8"), "target_met": complete ? (ratio.map { .bool($0 >= 0.8) } ?? .null) : .null,
        ])
    }

    static func line(_ title: String, _ json: JSONValue, _ tally: Tally) {
        say(
            "  backlog lifecycle c=\(concurrency) \(title): \(fmt(json["runs_per_s"]?.doubleValue)) runs/s, claim p50/p99 "
                + "\(fmt(json.at("latency_ms.claim.p50")?.doubleValue, 2))/\(fmt(json.at("latency_ms.claim.p99")?.doubleValue, 2)) ms, "
                + "ok=\(tally.ok) failed=\(tally.failed) (\(json["stopped_by"]?.stringValue ?? "-"))  \(failuresText(tally.failures))")
    }
}
