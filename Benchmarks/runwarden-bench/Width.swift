import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunwardenCore
import Synchronization

/// width: the same W tasks as one wide run (W independent tasks: no needs, no workspace) and as
/// W one-task runs, each drained by the same runner loops (claim `wait=0` → report `running` →
/// report `succeeded`). Timed from the first claim to the answer to the last task's `succeeded`;
/// the runs are created before the clock starts. A phase that reaches its deadline reports how
/// far it got instead of failing; a wide run the server refuses (422: more tasks than a run may
/// hold) is reported as `rejected`.
enum WidthWorkload {
    /// One run of `tasks` independent tasks.
    static func wideRunBody(tasks: Int) -> String {
        var body = #"{"workflow":"bench-width","tasks":["#
        body.reserveCapacity(tasks * 40 + 64)
        for index in 0..<tasks {
            if index > 0 { body += "," }
            body += #"{"name":"t\#(index)","command":["true"]}"#
        }
        return body + "]}"
    }

    /// What the runner loops of one phase did.
    struct Drained: Sendable {
        var tally: Tally
        var done: Int
        var transitions: Int
        var foreign: Int
        var emptyClaims: Int
        /// From the first claim to the last own `succeeded` (or to the deadline when unfinished).
        var seconds: Double
        var finished: Bool
        var finishedRunIDs: [String]
    }

    /// `runners` loops of claim → running → succeeded until `target` tasks of runs that `ours`
    /// accepts have succeeded or `deadline` passes. A task of another run (a PostgreSQL database
    /// is shared with earlier servers) is worked too, so it does not block the queue, but is
    /// counted apart and not in the transitions.
    static func drain(
        _ client: BenchClient, runners: Int, target: Int, deadline: Instant, keepRunIDs: Int = 0,
        ours: @escaping @Sendable (String) -> Bool
    ) async -> Drained {
        let done = Counter()
        let transitions = Counter()
        let foreign = Counter()
        let empty = Counter()
        let last = Locked<Instant?>(nil)
        let start = ContinuousClock.now
        let tally = await withTaskGroup(of: Tally.self, returning: Tally.self) { group in
            for index in 0..<runners {
                group.addTask {
                    let runner = "width-\(index)"
                    var tally = Tally(keepIDs: keepRunIDs)
                    while done.value < target, tally.failed < 1000 {
                        let now = ContinuousClock.now
                        guard now < deadline else { break }
                        // No request outlives the phase's deadline.
                        let boundByPhase = deadline - now < .seconds(120)
                        let timeout = TimeAmount.milliseconds(max(100, min(120_000, Int64((deadline - now).ms))))
                        var step = "claim"
                        do {
                            var begin = ContinuousClock.now
                            var answer = try await client.send(
                                .POST, "/v1/runners/\(runner)/claim?wait=0", body: Bodies.claim, timeout: timeout)
                            if answer.status == 204 {
                                // Every queued task is taken; the rest are with other loops.
                                empty.add()
                                try? await Task.sleep(for: .milliseconds(20))
                                continue
                            }
                            tally.time("claim", begin)
                            guard answer.status == 200 else {
                                tally.fail("\(answer.status)", step: step, sample: answer.text)
                                continue
                            }
                            let task = try answer.decode(ClaimAnswer.self).task
                            let own = ours(task.run_id)
                            if own { transitions.add() }
                            reports: for (kind, body) in [
                                ("running", Bodies.running(attempt: task.attempt)), ("succeeded", Bodies.succeeded(attempt: task.attempt)),
                            ] {
                                step = kind
                                begin = .now
                                answer = try await client.send(.POST, "/v1/tasks/\(task.id)/status", body: body, runner: runner, timeout: timeout)
                                let answered = ContinuousClock.now
                                tally.time(kind, begin)
                                guard answer.status == 200 else {
                                    tally.fail("\(answer.status)", step: step, sample: answer.text)
                                    break reports
                                }
                                guard try answer.decode(ReportAnswer.self).applied else {
                                    tally.fail("not_applied", step: step, sample: answer.text)
                                    break reports
                                }
                                guard own else {
                                    if kind == "succeeded" { foreign.add() }
                                    continue
                                }
                                transitions.add()
                                if kind == "succeeded" {
                                    done.add()
                                    tally.succeed(id: task.run_id)
                                    last.withLock { latest in
                                        if latest.map({ $0 < answered }) ?? true { latest = answered }
                                    }
                                }
                            }
                        } catch {
                            // A request cut off by the phase's deadline is the bound, not a failure (the
                            // client's clock may fire a moment before ours says the deadline is past).
                            if ContinuousClock.now >= deadline || (boundByPhase && (error as? HTTPClientError) == .deadlineExceeded) { break }
                            tally.fail("error:\(describe(error))", step: step, sample: "\(error)")
                        }
                    }
                    return tally
                }
            }
            var total = Tally(keepIDs: keepRunIDs)
            for await tally in group { total.merge(tally) }
            return total
        }
        let finished = done.value >= target
        let end = finished ? (last.value ?? .now) : min(ContinuousClock.now, deadline)
        return Drained(
            tally: tally, done: done.value, transitions: transitions.value, foreign: foreign.value, emptyClaims: empty.value,
            seconds: (end - start).seconds, finished: finished, finishedRunIDs: tally.okIDs)
    }

    /// Phase (a): one run of `tasks` tasks.
    static func oneRun(
        _ client: BenchClient, server: ServerProcess, tasks: Int, runners: Int, maxSeconds: Double, label: String
    ) async -> JSONValue {
        let body = wideRunBody(tasks: tasks)
        let createStart = ContinuousClock.now
        let created: BenchClient.Answer
        do {
            created = try await client.send(.POST, "/v1/runs", body: body, timeout: .seconds(Int64(max(60, maxSeconds))))
        } catch {
            say("  width \(label) one run of \(tasks): create failed: \(error)")
            return .object(["status": .string("create_failed"), "tasks": .int(Int64(tasks)), "error": .string("\(error)")])
        }
        let createSeconds = (ContinuousClock.now - createStart).seconds
        guard created.status == 202, let run = try? created.decode(Created.self) else {
            // 422: more tasks than the server lets a run hold.
            let status = created.status == 422 ? "rejected" : "create_failed"
            let message = (try? JSONValue.parse(Data(created.body.readableBytesView)))?.at("error.message")?.stringValue
            say("  width \(label) one run of \(tasks): \(status) — HTTP \(created.status) \(message ?? String(created.text.prefix(200)))")
            return .object([
                "status": .string(status), "tasks": .int(Int64(tasks)), "http_status": .int(Int64(created.status)),
                "error": .string(message ?? String(created.text.prefix(300))),
            ])
        }
        await server.waitUntilIdle()
        let meter = CPUMeter(serverPID: server.pid)
        let drained = await drain(client, runners: runners, target: tasks, deadline: .now + .milliseconds(Int64(maxSeconds * 1000))) {
            $0 == run.id
        }
        let cpu = meter.finish()
        if !drained.finished {
            // Its queued tasks would be claimed by whatever runs next on this database.
            _ = try? await client.setup(.POST, "/v1/runs/\(run.id)/cancel")
        }
        let status = try? await client.send(.GET, "/v1/runs/\(run.id)?tasks=false").decode(RunSnapshot.self).status
        let json = phaseJSON(drained, tasks: tasks, runs: 1, createSeconds: createSeconds, maxSeconds: maxSeconds, cpu: cpu, extra: [
            .init("run_status", JSONValue(status)),
        ])
        report("one run  ", label: label, tasks: tasks, drained)
        return json
    }

    /// Phase (b): `tasks` one-task runs, all created (32 at a time) before the clock starts.
    static func manyRuns(
        _ client: BenchClient, server: ServerProcess, tasks: Int, runners: Int, maxSeconds: Double, label: String, cleanUp: Bool
    ) async -> JSONValue {
        let bound = Bound(maxIterations: tasks, duration: .milliseconds(Int64(maxSeconds * 1000)))
        let (created, createSeconds) = await createOneTaskRuns(client, bound: bound)
        let ids = Set(created.okIDs)
        guard !ids.isEmpty else {
            say("  width \(label) many runs: no run created: \(failuresText(created.failures))")
            return .object([
                "status": .string("create_failed"), "tasks": .int(Int64(tasks)), "failures": dictJSON(created.failures),
                "failure_samples": dictJSON(created.failureSamples),
            ])
        }
        say("  width \(label) many runs: \(ids.count) one-task runs created in \(fmt(createSeconds)) s (\(created.failed) failed)")
        await server.waitUntilIdle()
        let meter = CPUMeter(serverPID: server.pid)
        let drained = await drain(
            client, runners: runners, target: ids.count, deadline: .now + .milliseconds(Int64(maxSeconds * 1000)), keepRunIDs: ids.count
        ) { ids.contains($0) }
        let cpu = meter.finish()
        if !drained.finished, cleanUp {
            await cancel(client, Array(ids.subtracting(drained.finishedRunIDs)))
        }
        let json = phaseJSON(drained, tasks: tasks, runs: ids.count, createSeconds: createSeconds, maxSeconds: maxSeconds, cpu: cpu, extra: [
            .init("runs_not_created", .int(Int64(tasks - ids.count))), .init("create_failures", dictJSON(created.failures)),
        ])
        report("many runs", label: label, tasks: ids.count, drained)
        return json
    }

    /// Cancels runs left unfinished (16 at a time, 120 s at most), so that the next server on a
    /// shared database does not find their tasks queued.
    static func cancel(_ client: BenchClient, _ runIDs: [String]) async {
        guard !runIDs.isEmpty else { return }
        let next = Locked(0)
        let bound = Bound(maxIterations: runIDs.count, duration: .seconds(120))
        _ = await runLevel(concurrency: 16, bound: bound) { _, _, _ in
            let index = next.withLock { value in
                defer { value += 1 }
                return value
            }
            guard index < runIDs.count else { return }
            _ = try? await client.send(.POST, "/v1/runs/\(runIDs[index])/cancel")
        }
    }

    static func phaseJSON(
        _ drained: Drained, tasks: Int, runs: Int, createSeconds: Double, maxSeconds: Double, cpu: JSONValue, extra: [JSONValue.Member]
    ) -> JSONValue {
        let latency = drained.tally.latency
        let seconds = max(drained.seconds, 1e-9)
        return .object(
            [
                .init("status", .string(drained.finished ? "finished" : "unfinished")),
                .init("finished", .bool(drained.finished)),
                .init("tasks", .int(Int64(tasks))), .init("runs", .int(Int64(runs))),
                .init("tasks_done", .int(Int64(drained.done))),
                .init("seconds", number(drained.seconds, digits: 3)),
                .init("tasks_per_s", number(Double(drained.done) / seconds)),
                .init("transitions", .int(Int64(drained.transitions))),
                .init("transitions_per_s", number(Double(drained.transitions) / seconds)),
                .init("max_seconds", number(maxSeconds)),
                .init("create_s", number(createSeconds, digits: 3)),
                .init("empty_claims", .int(Int64(drained.emptyClaims))),
                .init("foreign_tasks", .int(Int64(drained.foreign))),
                .init("failed", .int(Int64(drained.tally.failed))), .init("failures", dictJSON(drained.tally.failures)),
                .init("failure_samples", dictJSON(drained.tally.failureSamples)),
                .init(
                    "latency_ms",
                    .object(
                        ["claim", "running", "succeeded"].map { .init($0, latencySummary(latency[$0] ?? [])) }
                            + [.init("transition", latencySummary(latency.values.flatMap { $0 }))])),
                .init("cpu", cpu),
            ] + extra)
    }

    static func report(_ phase: String, label: String, tasks: Int, _ drained: Drained) {
        let seconds = max(drained.seconds, 1e-9)
        let all = drained.tally.latency.values.flatMap { $0 }.sorted()
        say(
            "  width \(label) \(phase): \(drained.done)/\(tasks) tasks \(drained.finished ? "done" : "UNFINISHED") in \(fmt(drained.seconds, 2)) s, "
                + "\(fmt(Double(drained.transitions) / seconds)) transitions/s, p50/p99 \(fmt(percentile(all, 50), 2))/\(fmt(percentile(all, 99), 2)) ms, "
                + "failures \(failuresText(drained.tally.failures))")
    }

    /// One width W: both phases and their ratio. A finished pair compares seconds; when a phase
    /// did not finish the ratio comes from the task rates and says so.
    static func summary(tasks: Int, runners: Int, one: JSONValue, many: JSONValue) -> JSONValue {
        let oneSeconds = one["seconds"]?.doubleValue
        let manySeconds = many["seconds"]?.doubleValue
        var ratio: Double?
        var basis: String?
        if one["finished"] == .bool(true), many["finished"] == .bool(true), let oneSeconds, let manySeconds, manySeconds > 0 {
            ratio = oneSeconds / manySeconds
            basis = "seconds"
        } else if let oneRate = one["tasks_per_s"]?.doubleValue, let manyRate = many["tasks_per_s"]?.doubleValue, oneRate > 0 {
            ratio = manyRate / oneRate
            basis = "task rates (a phase did not finish)"
        } else {
            let failed = [("one run", one), ("many runs", many)].filter { $0.1["tasks_per_s"] == nil }
            basis = "none: " + failed.map { "\($0.0) \($0.1["status"]?.stringValue ?? "-")" }.joined(separator: ", ")
        }
        return .object([
            "tasks": .int(Int64(tasks)), "runners": .int(Int64(runners)),
            "one_run": one, "many_runs": many,
            "one_run_seconds": one["seconds"] ?? .null, "many_runs_seconds": many["seconds"] ?? .null,
            "one_over_many": number(ratio, digits: 3), "ratio_basis": JSONValue(basis),
            "target": .string("one_over_many <= 1.3"), "target_met": ratio.map { .bool($0 <= 1.3) } ?? .null,
        ])
    }
}
