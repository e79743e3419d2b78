import AsyncHTTPClient
import Foundation
import NIOCore
import RunwardenCore
import Testing

/// A parked long-poll holds a handler and its memory: it must end when its client goes away
/// and when the server shuts down, not when its `wait` runs out.
@Suite("Long-poll lifetime", .serialized)
struct LongPollLifetimeTests {
    @Test("A snapshot long-poll whose client goes away stops waiting at once")
    func abandonedLongPollIsReleased() async throws {
        let (cluster, runID) = try await serverWithOneRun()
        let http = HTTPClient.shared

        let poll = Task {
            let request = HTTPClientRequest(url: "\(cluster.url)/v1/runs/\(runID)?wait=60&version=1")
            _ = try await http.execute(request, timeout: .seconds(90))
        }
        #expect(await parkedRunWaiters(at: cluster.url, http: http, becomes: 1), "the long-poll never parked")
        // Cancelling the request closes its connection, as a client that dies or times out does.
        poll.cancel()
        #expect(await parkedRunWaiters(at: cluster.url, http: http, becomes: 0), "the abandoned long-poll is still parked")
    }

    @Test("SIGTERM answers the parked long-polls and exits within seconds, not after their wait")
    func shutdownEndsParkedLongPolls() async throws {
        let (cluster, runID) = try await serverWithOneRun()
        let http = HTTPClient.shared

        let polls = (0..<3).map { _ in
            Task { () -> (status: Int, body: String) in
                let request = HTTPClientRequest(url: "\(cluster.url)/v1/runs/\(runID)?wait=60&version=1")
                let response = try await http.execute(request, timeout: .seconds(90))
                let body = try await response.body.collect(upTo: 1 << 20)
                return (Int(response.status.code), String(buffer: body))
            }
        }
        #expect(await parkedRunWaiters(at: cluster.url, http: http, becomes: 3), "the long-polls never parked")
        let start = ContinuousClock.now
        cluster.server.signal(SIGTERM)
        let exitCode = await cluster.server.waitForExit(within: .seconds(20))
        let elapsed = ContinuousClock.now - start

        #expect(exitCode == 0, "server output: \(cluster.server.output)")
        #expect(elapsed < .seconds(10), "shutdown took \(elapsed)")
        for poll in polls {
            let answer = try await poll.value
            #expect(answer.status == 200)
            #expect(answer.body.contains(#""id":"\#(runID)""#), "answer: \(answer.body)")
        }
    }

    /// A server with one queued run, nobody claiming it: a long-poll on it waits.
    private func serverWithOneRun() async throws -> (Cluster, String) {
        let cluster = try Cluster()
        try await cluster.startServer()
        return (cluster, try await cluster.submit(#"{"workflow": "w", "tasks": [{"name": "t", "command": ["true"]}]}"#))
    }

    /// Polls `/metrics` until `runwarden_waiters{topic="run"}` equals `count`, for up to 10 s.
    private func parkedRunWaiters(at url: String, http: HTTPClient, becomes count: Int) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let response = try? await http.execute(HTTPClientRequest(url: "\(url)/metrics"), timeout: .seconds(5)),
                let body = try? await response.body.collect(upTo: 1 << 22),
                String(buffer: body).split(separator: "\n").contains(where: { line in
                    let sample = line.split(separator: " ")
                    return sample.first == #"runwarden_waiters{topic="run"}"# && sample.last.flatMap { Double($0) } == Double(count)
                })
            {
                return true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}
