import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunwardenCore
import Synchronization

/// fan-out: one run of `chains × length` tasks — each chain a line of `needs`, every task on one
/// of `workspaces` shared workspaces — worked by `runners` runner loops (claim with a long-poll,
/// report `running`, report `succeeded`). Time from the create's answer until a watcher
/// long-polling the run sees it `succeeded`.
enum FanOutWorkload {
    static func body(chains: Int, length: Int, workspaces: Int) -> String {
        var tasks: [JSONValue] = []
        for chain in 0..<chains {
            for position in 0..<length {
                var task: [JSONValue.Member] = [
                    .init("name", .string("c\(chain)-\(position)")),
                    .init("command", .array([.string("true")])),
                    .init("workspace", .string("ws-\(chain % workspaces)")),
                ]
                if position > 0 { task.append(.init("needs", .array([.string("c\(chain)-\(position - 1)")]))) }
                tasks.append(.object(task))
            }
        }
        let run: JSONValue = .object(["workflow": .string("bench-fanout"), "tasks": .array(tasks)])
        return String(decoding: run.encoded(), as: UTF8.self)
    }

    static func run(_ client: BenchClient, serverPID: Int32? = nil, chains: Int = 100, length: Int = 10, workspaces: Int = 16, runners: Int = 8,
                    timeout: Duration) async throws -> JSONValue {
        let meter = CPUMeter(serverPID: serverPID)
        let total = chains * length
        let createBody = body(chains: chains, length: length, workspaces: workspaces)
        let done = StopFlag()
        let createStart = ContinuousClock.now
        let created = try await client.send(.POST, "/v1/runs", body: createBody, timeout: .seconds(60))
        let createMs = (ContinuousClock.now - createStart).ms
        guard created.status == 202 else { throw BenchError("fan-out create: HTTP \(created.status) \(created.text.prefix(300))") }
        let run = try created.decode(Created.self)
        let start = ContinuousClock.now

        let (tally, finished): (Tally, (status: String, at: Instant)) = try await withThrowingTaskGroup(of: Tally.self, returning: (Tally, (status: String, at: Instant)).self) { group in
            for index in 0..<runners {
                group.addTask {
                    let runner = "fan-\(index)"
                    var tally = Tally()
                    while !done.isSet {
                        var step = "claim"
                        do {
                            var begin = ContinuousClock.now
                            var answer = try await client.send(.POST, "/v1/runners/\(runner)/claim?wait=1", body: Bodies.claim)
                            if answer.status == 204 { continue }
                            tally.time("claim", begin)
                            guard answer.status == 200 else {
                                tally.fail("\(answer.status)", step: step, sample: answer.text)
                                continue
                            }
                            let task = try answer.decode(ClaimAnswer.self).task
                            for (kind, body) in [("running", Bodies.running(attempt: task.attempt)), ("succeeded", Bodies.succeeded(attempt: task.attempt))] {
                                step = kind
                                begin = .now
                                answer = try await client.send(.POST, "/v1/tasks/\(task.id)/status", body: body, runner: runner)
                                tally.time(kind, begin)
                                guard answer.status == 200 else {
                                    tally.fail("\(answer.status)", step: step, sample: answer.text)
                                    break
                                }
                            }
                            tally.succeed()
                        } catch {
                            tally.fail("error:\(describe(error))", step: step, sample: "\(error)")
                            if tally.failed > 100 { return tally }
                        }
                    }
                    return tally
                }
            }
            // The watcher: long-polls the run until it is terminal.
            var version = run.version
            var final: (String, Instant)?
            var succeeded = 0
            while final == nil, ContinuousClock.now - start < timeout {
                let answer = try await client.send(.GET, "/v1/runs/\(run.id)?wait=30&version=\(version)", timeout: .seconds(60))
                let now = ContinuousClock.now
                let snapshot = try answer.decode(RunSnapshot.self)
                version = snapshot.version
                succeeded = snapshot.progress?.succeeded ?? succeeded
                if ["succeeded", "failed", "canceled", "timed_out"].contains(snapshot.status) { final = (snapshot.status, now) }
            }
            done.set()
            var total = Tally()
            while let tally = try await group.next() { total.merge(tally) }
            total.ok = succeeded  // tasks the run counts succeeded when the watcher last looked
            return (total, final.map { (status: $0.0, at: $0.1) } ?? (status: "timeout", at: ContinuousClock.now))
        }
        if finished.status == "timeout" {
            // Its queued tasks would be claimed (oldest first) by whatever runs next on this server.
            _ = try? await client.setup(.POST, "/v1/runs/\(run.id)/cancel")
        }
        let seconds = (finished.at - start).seconds
        let claims = tally.latency["claim"]?.count ?? 0
        say("  fan-out: \(total) tasks, \(runners) runners: \(finished.status) (\(tally.ok) tasks succeeded) in \(fmt(seconds, 2)) s, \(fmt(Double(claims) / seconds)) claims/s, failures \(failuresText(tally.failures))")
        return .object([
            "tasks": .int(Int64(total)), "chains": .int(Int64(chains)), "chain_length": .int(Int64(length)),
            "workspaces": .int(Int64(workspaces)), "runners": .int(Int64(runners)),
            "status": .string(finished.status),
            "tasks_succeeded": .int(Int64(tally.ok)),
            "timeout_s": number(timeout.seconds),
            "finish_s": number(seconds, digits: 3),
            "claims": .int(Int64(claims)),
            "claims_per_s": number(Double(claims) / seconds),
            "create_ms": number(createMs),
            "failed": .int(Int64(tally.failed)), "failures": dictJSON(tally.failures),
            "failure_samples": dictJSON(tally.failureSamples),
            "latency_ms": .object(["claim", "running", "succeeded"].map { .init($0, latencySummary(tally.latency[$0] ?? [])) }),
            "cpu": meter.finish(),
        ])
    }
}
