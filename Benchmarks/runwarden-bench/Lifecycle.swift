import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunwardenCore

/// lifecycle: create a 1-task run → claim → report `running` → report `succeeded` → GET shows
/// `succeeded`. An iteration succeeds only if every step does; a failed one is counted once,
/// under the reason of its first failing step (HTTP status, "204", "not_applied",
/// "state:<status>", or "error:<Type>" for a transport error).
enum LifecycleWorkload {
    static let kinds = ["create", "claim", "running", "succeeded", "get"]

    static func iteration(_ client: BenchClient, runnerPrefix: String = "bench")
        -> @Sendable (Int, Int, inout Tally) async -> Void
    {
        { worker, _, tally in
            let runner = "\(runnerPrefix)-\(worker)"
            var step = "create"
            do {
                var start = ContinuousClock.now
                var answer = try await client.send(.POST, "/v1/runs", body: Bodies.oneTaskRun)
                tally.time("create", start)
                guard answer.status == 202 else { return tally.fail("\(answer.status)", step: step, sample: answer.text) }

                step = "claim"
                start = .now
                answer = try await client.send(.POST, "/v1/runners/\(runner)/claim?wait=0", body: Bodies.claim)
                tally.time("claim", start)
                guard answer.status == 200 else { return tally.fail("\(answer.status)", step: step, sample: answer.text) }
                let task = try answer.decode(ClaimAnswer.self).task

                for (kind, body) in [("running", Bodies.running(attempt: task.attempt)), ("succeeded", Bodies.succeeded(attempt: task.attempt))] {
                    step = kind
                    start = .now
                    answer = try await client.send(.POST, "/v1/tasks/\(task.id)/status", body: body, runner: runner)
                    tally.time(kind, start)
                    guard answer.status == 200 else { return tally.fail("\(answer.status)", step: step, sample: answer.text) }
                    guard try answer.decode(ReportAnswer.self).applied else {
                        return tally.fail("not_applied", step: step, sample: answer.text)
                    }
                }

                step = "get"
                start = .now
                answer = try await client.send(.GET, "/v1/runs/\(task.run_id)")
                tally.time("get", start)
                guard answer.status == 200 else { return tally.fail("\(answer.status)", step: step, sample: answer.text) }
                let snapshot = try answer.decode(RunSnapshot.self)
                guard snapshot.status == "succeeded" else {
                    return tally.fail("state:\(snapshot.status)", step: step, sample: answer.text)
                }
                tally.succeed(id: task.run_id)
            } catch {
                tally.fail("error:\(describe(error))", step: step, sample: "\(error)")
            }
        }
    }

    /// One concurrency level; the JSON mirrors prefect_bench.py's (`set_state` pools the three
    /// state changes — claim, running, succeeded — as Prefect's PENDING, RUNNING, COMPLETED).
    static func level(
        _ client: BenchClient, concurrency: Int, duration: Duration, maxIterations: Int, keepIDs: Int = 200, serverPID: Int32? = nil
    ) async -> (JSONValue, Tally) {
        let bound = Bound(maxIterations: maxIterations, duration: duration)
        let meter = CPUMeter(serverPID: serverPID)
        let (tally, wall) = await runLevel(concurrency: concurrency, bound: bound, keepIDs: keepIDs, iteration: iteration(client))
        let cpu = meter.finish()
        let requests = tally.latency.values.reduce(0) { $0 + $1.count }
        var latency: [JSONValue.Member] = kinds.map { .init($0, latencySummary(tally.latency[$0] ?? [])) }
        latency.append(.init("set_state", latencySummary(["claim", "running", "succeeded"].flatMap { tally.latency[$0] ?? [] })))
        let json: JSONValue = .object([
            "runs_per_s": number(Double(tally.ok) / wall),
            "requests_per_s": number(Double(requests) / wall),
            "ok": .int(Int64(tally.ok)), "failed": .int(Int64(tally.failed)),
            "failures": dictJSON(tally.failures), "failures_by_step": dictJSON(tally.failuresByStep),
            "failure_samples": dictJSON(tally.failureSamples),
            "latency_ms": .object(latency),
            "iterations": .int(Int64(bound.iterations)), "wall_s": number(wall), "stopped_by": JSONValue(bound.stoppedBy),
            "cpu": cpu,
        ])
        return (json, tally)
    }
}

/// read: GET /v1/runs/{id} over ids made beforehand (cycled); healthz: GET /healthz; create:
/// POST /v1/runs alone (the write path without the rest of the lifecycle). One request per
/// iteration; any 2xx is a success.
enum ReadWorkload {
    static func level(
        _ client: BenchClient, concurrency: Int, duration: Duration, maxIterations: Int, serverPID: Int32? = nil,
        method: HTTPMethod = .GET, body: String? = nil, path: @escaping @Sendable (Int, Int) -> String
    ) async -> JSONValue {
        let bound = Bound(maxIterations: maxIterations, duration: duration)
        let meter = CPUMeter(serverPID: serverPID)
        let (tally, wall) = await runLevel(concurrency: concurrency, bound: bound) { worker, sequence, tally in
            do {
                let start = ContinuousClock.now
                let answer = try await client.send(method, path(worker, sequence), body: body)
                tally.time("req", start)
                if (200..<300).contains(answer.status) {
                    tally.succeed()
                } else {
                    tally.fail("\(answer.status)", step: "get", sample: answer.text)
                }
            } catch {
                tally.fail("error:\(describe(error))", step: "get", sample: "\(error)")
            }
        }
        let cpu = meter.finish()
        let sorted = (tally.latency["req"] ?? []).sorted()
        return .object([
            "reads_per_s": number(Double(tally.ok) / wall),
            "ok": .int(Int64(tally.ok)), "failed": .int(Int64(tally.failed)),
            "failures": dictJSON(tally.failures), "failure_samples": dictJSON(tally.failureSamples),
            "p50_ms": number(percentile(sorted, 50), digits: 3), "p99_ms": number(percentile(sorted, 99), digits: 3),
            "max_ms": number(sorted.last, digits: 3),
            "iterations": .int(Int64(bound.iterations)), "wall_s": number(wall), "stopped_by": JSONValue(bound.stoppedBy),
            "cpu": cpu,
        ])
    }
}

/// Creates up to `bound`'s count of one-task runs, 32 at a time (set-up, not a measured level):
/// the tally holds the created run ids, and the seconds it took.
func createOneTaskRuns(_ client: BenchClient, bound: Bound) async -> (Tally, Double) {
    await runLevel(concurrency: 32, bound: bound, keepIDs: bound.maxIterations) { _, _, tally in
        do {
            let answer = try await client.setup(.POST, "/v1/runs", body: Bodies.oneTaskRun)
            guard answer.status == 202 else { return tally.fail("\(answer.status)", step: "create", sample: answer.text) }
            tally.succeed(id: try answer.decode(Created.self).id)
        } catch {
            tally.fail("error:\(describe(error))", step: "create", sample: "\(error)")
        }
    }
}
