import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunwardenCore
import Synchronization

/// Where each waiter's answer lands, and how the changer waits for it.
final class AnswerBoard: Sendable {
    enum Slot: Sendable {
        case answered(Instant)
        case waiting(CheckedContinuation<Instant?, Never>)
        case expired
    }

    private let slots = Mutex<[Int: Slot]>([:])

    func answer(_ index: Int, at time: Instant) {
        let waiting: CheckedContinuation<Instant?, Never>? = slots.withLock { slots in
            if case .waiting(let continuation) = slots[index] {
                slots[index] = .answered(time)
                return continuation
            }
            slots[index] = .answered(time)
            return nil
        }
        waiting?.resume(returning: time)
    }

    /// The time waiter `index` got its answer; nil when it has not within `timeout`.
    func awaitAnswer(_ index: Int, timeout: Duration) async -> Instant? {
        let timer = Task {
            try? await Task.sleep(for: timeout)
            let waiting: CheckedContinuation<Instant?, Never>? = slots.withLock { slots in
                if case .waiting(let continuation) = slots[index] {
                    slots[index] = .expired
                    return continuation
                }
                return nil
            }
            waiting?.resume(returning: nil)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready: Instant? = slots.withLock { slots in
                if case .answered(let time) = slots[index] { return time }
                slots[index] = .waiting(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// wake: N idle long-poll waiters on distinct runs (each run's task claimed, so the change is a
/// runner's report); then reports `succeeded` for runs one at a time and times, for each, the
/// gap from the report's response to its waiter's answer. Server RSS is read with every waiter
/// parked, and compared with the RSS just before they connected.
enum WakeWorkload {
    struct Prepared: Sendable {
        let runID: String
        let taskID: String
        let attempt: Int
    }

    static let runner = "wake-runner"

    /// Creates `count` one-task runs and claims every task (setup, not measured).
    static func prepare(_ client: BenchClient, count: Int) async throws -> [Prepared] {
        let bound = Bound(maxIterations: count, duration: .seconds(3600))
        let (created, _) = await createOneTaskRuns(client, bound: bound)
        guard created.failed == 0 else { throw BenchError("wake setup: creates failed: \(created.failureSamples)") }
        let claims = Bound(maxIterations: count, duration: .seconds(3600))
        let prepared = Locked<[Prepared]>([])
        let (claimed, _) = await runLevel(concurrency: 32, bound: claims) { _, _, tally in
            do {
                let answer = try await client.setup(.POST, "/v1/runners/\(runner)/claim?wait=5", body: Bodies.claim)
                guard answer.status == 200 else { return tally.fail("\(answer.status)", step: "claim", sample: answer.text) }
                let task = try answer.decode(ClaimAnswer.self).task
                prepared.withLock { $0.append(Prepared(runID: task.run_id, taskID: task.id, attempt: task.attempt)) }
                tally.succeed()
            } catch {
                tally.fail("error", step: "claim", sample: "\(error)")
            }
        }
        guard claimed.failed == 0 else { throw BenchError("wake setup: claims failed: \(claimed.failureSamples)") }
        return prepared.value
    }

    static func run(_ client: BenchClient, server: ServerProcess, waiters count: Int, changes wanted: Int) async throws -> JSONValue {
        say("  wake: preparing \(count) claimed runs …")
        let setupStart = ContinuousClock.now
        let runs = try await prepare(client, count: count)
        say("  wake: \(runs.count) runs ready in \(fmt((ContinuousClock.now - setupStart).seconds)) s; parking \(count) waiters …")
        await server.waitUntilIdle()
        try await Task.sleep(for: .seconds(1))
        let rssBefore = server.rssKiB ?? 0

        // What a bare connection costs: as many plain TCP connections, no request sent.
        let sockets = try await IdleSockets.open(port: server.port, count: count)
        await server.waitUntilIdle()
        try await Task.sleep(for: .seconds(1))
        let rssConnected = server.rssKiB ?? 0
        let perConnection = Double(rssConnected - rssBefore) * 1024 / Double(count)
        say("  wake: \(count) bare TCP connections: RSS \(fmt(Double(rssBefore) / 1024)) → \(fmt(Double(rssConnected) / 1024)) MiB, \(fmt(perConnection / 1024, 2)) KiB per connection")
        IdleSockets.close(sockets)
        let closeDeadline = ContinuousClock.now + .seconds(30)
        while ProcFS.establishedConnections(localPort: server.port) > 64, ContinuousClock.now < closeDeadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        await server.waitUntilIdle()
        try await Task.sleep(for: .seconds(1))
        let rssBeforeWaiters = server.rssKiB ?? 0

        let board = AnswerBoard()
        let ready = Counter()  // waiters that read their version and sent their long-poll
        let reparks = Counter()  // long-polls that ran out (60 s) and were sent again
        let waiterErrors = Locked<[String: Int]>([:])
        
        return try await withThrowingTaskGroup(of: Void.self, returning: JSONValue.self) { group in
            let parkStart = ContinuousClock.now
            let wave = 250
            for waveStart in stride(from: 0, to: count, by: wave) {
                let waveEnd = min(count, waveStart + wave)
                for index in waveStart..<waveEnd {
                    let run = runs[index]
                    group.addTask {
                        do {
                            let first = try await client.setup(.GET, "/v1/runs/\(run.runID)")
                            let version = try first.decode(RunSnapshot.self).version
                            ready.add()
                            while true {
                                let answer = try await client.send(
                                    .GET, "/v1/runs/\(run.runID)?wait=60&version=\(version)", timeout: .seconds(90))
                                let now = ContinuousClock.now
                                guard answer.status == 200 else {
                                    waiterErrors.withLock { $0["\(answer.status)", default: 0] += 1 }
                                    return
                                }
                                if try answer.decode(RunSnapshot.self).version > version {
                                    board.answer(index, at: now)
                                    return
                                }
                                reparks.add()
                            }
                        } catch is CancellationError {
                        } catch {
                            if !Task.isCancelled { waiterErrors.withLock { $0["error:\(describe(error))", default: 0] += 1 } }
                        }
                    }
                }
                while ready.value < waveEnd, waiterErrors.withLock({ $0.isEmpty }) {
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            // Parked: every waiter sent its long-poll, the server holds that many connections,
            // and it has gone quiet.
            let connectDeadline = ContinuousClock.now + .seconds(60)
            while ProcFS.establishedConnections(localPort: server.port) < count, ContinuousClock.now < connectDeadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            await server.waitUntilIdle()
            let parkSeconds = (ContinuousClock.now - parkStart).seconds
            try await Task.sleep(for: .seconds(1))
            let rssParked = server.rssKiB ?? 0
            let connections = ProcFS.establishedConnections(localPort: server.port)
            let perWaiter = Double(rssParked - rssBefore) * 1024 / Double(count)
            let perParkedRequest = perWaiter - perConnection
            say("  wake: \(count) waiters parked in \(fmt(parkSeconds)) s (\(connections) connections); RSS \(fmt(Double(rssBefore) / 1024)) → \(fmt(Double(rssParked) / 1024)) MiB, \(fmt(perWaiter / 1024, 2)) KiB per waiter")

            // Change runs one at a time, spread over the parked set.
            let changeCount = min(wanted, count)
            let step = max(1, count / changeCount)
            var fromResponse: [Double] = []
            var fromSend: [Double] = []
            var reportMs: [Double] = []
            var missed = 0
            var reportFailures: [String: Int] = [:]
            let changeStart = ContinuousClock.now
            let meter = CPUMeter(serverPID: server.pid)
            for index in stride(from: 0, to: count, by: step).prefix(changeCount) {
                let run = runs[index]
                let sent = ContinuousClock.now
                let answer = try await client.send(
                    .POST, "/v1/tasks/\(run.taskID)/status", body: Bodies.succeeded(attempt: run.attempt), runner: runner)
                let responded = ContinuousClock.now
                guard answer.status == 200 else {
                    reportFailures["\(answer.status)", default: 0] += 1
                    continue
                }
                reportMs.append((responded - sent).ms)
                guard let answered = await board.awaitAnswer(index, timeout: .seconds(5)) else {
                    missed += 1
                    continue
                }
                fromResponse.append((answered - responded).ms)
                fromSend.append((answered - sent).ms)
            }
            let changeSeconds = (ContinuousClock.now - changeStart).seconds
            let cpu = meter.finish()
            let rssAfter = server.rssKiB ?? 0
            group.cancelAll()
            // Waiters end as their requests are cancelled; give them a moment.
            while try await group.next() != nil {}

            let sortedResponse = fromResponse.sorted()
            let sortedSend = fromSend.sorted()
            let sortedReport = reportMs.sorted()
            let result: JSONValue = .object([
                "waiters": .int(Int64(count)),
                "changes": .int(Int64(fromResponse.count)),
                "missed": .int(Int64(missed)),
                "report_failures": dictJSON(reportFailures),
                "waiter_errors": dictJSON(waiterErrors.value),
                "reparked": .int(Int64(reparks.value)),
                "wake_ms": .object([
                    "p50": number(percentile(sortedResponse, 50), digits: 3),
                    "p99": number(percentile(sortedResponse, 99), digits: 3),
                    "max": number(sortedResponse.last, digits: 3),
                    "min": number(sortedResponse.first, digits: 3),
                ]),
                "report_to_answer_ms": .object([
                    "p50": number(percentile(sortedSend, 50), digits: 3),
                    "p99": number(percentile(sortedSend, 99), digits: 3),
                ]),
                "report_ms": .object([
                    "p50": number(percentile(sortedReport, 50), digits: 3),
                    "p99": number(percentile(sortedReport, 99), digits: 3),
                ]),
                "rss_mb_before": number(Double(rssBefore) / 1024),
                "rss_mb_parked": number(Double(rssParked) / 1024),
                "rss_mb_after_changes": number(Double(rssAfter) / 1024),
                "rss_kib_per_waiter": number(perWaiter / 1024),
                "rss_mb_bare_connections": number(Double(rssConnected) / 1024),
                "rss_kib_per_bare_connection": number(perConnection / 1024),
                "rss_kib_per_parked_request": number(perParkedRequest / 1024),
                "rss_mb_before_waiters": number(Double(rssBeforeWaiters) / 1024),
                "server_connections_parked": .int(Int64(connections)),
                "setup_s": number((parkStart - setupStart).seconds),
                "park_s": number(parkSeconds),
                "changes_s": number(changeSeconds),
                "cpu_during_changes": cpu,
            ])
            say("  wake: \(fromResponse.count) changes in \(fmt(changeSeconds)) s: wake p50 \(fmt(percentile(sortedResponse, 50), 3)) ms, p99 \(fmt(percentile(sortedResponse, 99), 3)) ms (from the report's response); missed \(missed)")
            return result
        }
    }
}

/// Plain TCP connections to the server that never send a request.
enum IdleSockets {
    static func open(port: Int, count: Int) async throws -> [Int32] {
        var sockets: [Int32] = []
        sockets.reserveCapacity(count)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        for index in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else {
                close(sockets)
                throw BenchError("socket(): errno \(errno) after \(sockets.count) sockets")
            }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else {
                Glibc.close(fd)
                close(sockets)
                throw BenchError("connect(): errno \(errno) after \(sockets.count) sockets")
            }
            sockets.append(fd)
            // Let the server accept as we go (its backlog is finite).
            if index % 200 == 199 { try await Task.sleep(for: .milliseconds(5)) }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while ProcFS.establishedConnections(localPort: port) < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        return sockets
    }

    static func close(_ sockets: [Int32]) {
        for fd in sockets { Glibc.close(fd) }
    }
}
