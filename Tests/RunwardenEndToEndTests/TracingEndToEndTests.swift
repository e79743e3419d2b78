import AsyncHTTPClient
import Foundation
import NIOCore
import RunwardenClient
import RunwardenTestSupport
import Testing

/// SPEC §11: `--otel-endpoint` sends a trace per run — a root span from creation to the end,
/// a child span per task attempt — to a real OTLP/HTTP receiver, from a real server and runner.
@Suite("tracing end to end", .serialized, .timeLimit(.minutes(2)))
struct TracingEndToEndTests {
    static let callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let callerSpan = "00f067aa0ba902b7"

    /// Three tasks, `b` and `c` after `a`; each writes the `TRACEPARENT` it was given.
    static let threeTasks = #"""
        {"workflow": "traced", "tasks": [
          {"name": "a", "command": "printf '%s' \"${TRACEPARENT-unset}\" > a.txt", "workspace": "trace-a"},
          {"name": "b", "command": "printf '%s' \"${TRACEPARENT-unset}\" > b.txt", "workspace": "trace-b", "needs": ["a"]},
          {"name": "c", "command": "printf '%s' \"${TRACEPARENT-unset}\" > c.txt", "workspace": "trace-c", "needs": ["a"]}]}
        """#

    @Test("a 3-task run's trace reaches the collector under the caller's span, each attempt a child of the run, and tasks see their attempt's TRACEPARENT")
    func runTrace() async throws {
        try await OTLPReceiver.with { receiver, port in
            let cluster = try Cluster()
            try await cluster.startServer(["--otel-endpoint", "http://127.0.0.1:\(port)", "--otel-service-name", "runwarden-e2e"])
            try cluster.startRunner()
            let runID = try await Self.create(
                Self.threeTasks, on: cluster, headers: ["traceparent": "00-\(Self.callerTrace)-\(Self.callerSpan)-01"])
            let run = try await cluster.waitForEnd(runID)
            #expect(run.status == .succeeded)

            let runSpans = await receiver.waitFor { spans -> [ReceivedSpan]? in
                let ours = spans.filter { $0.attributes["runwarden.run_id"] == runID }
                return ours.count >= 4 ? ours : nil
            }
            let spans = try #require(runSpans, "run spans received: \(receiver.spans), failures: \(receiver.failures)")
            #expect(receiver.failures.isEmpty, "\(receiver.failures)")
            #expect(spans.count == 4, "\(spans)")
            let root = try #require(spans.first { $0.name == "run traced" }, "\(spans)")
            #expect(root.traceID == Self.callerTrace)
            #expect(root.parentSpanID == Self.callerSpan)
            #expect(root.attributes["runwarden.status"] == "succeeded")
            #expect(root.attributes["runwarden.workflow"] == "traced")
            #expect(root.service == "runwarden-e2e")
            #expect(root.statusCode == 1)
            #expect(root.start > 0 && root.start <= root.end)

            for task in run.tasks ?? [] {
                let attempt = try #require(spans.first { $0.attributes["runwarden.task_id"] == task.id }, "no span of \(task.name)")
                #expect(attempt.name == "task \(task.name)")
                #expect(attempt.traceID == Self.callerTrace)
                #expect(attempt.parentSpanID == root.spanID)
                #expect(attempt.attributes["runwarden.attempt"] == "1")
                #expect(attempt.attributes["runwarden.status"] == "succeeded")
                #expect(attempt.attributes["runwarden.task_name"] == task.name)
                #expect(root.start <= attempt.start && attempt.start <= attempt.end && attempt.end <= root.end)
                // The task joined the trace under its attempt's span.
                let seen = try String(
                    contentsOf: cluster.workspace("trace-\(task.name)").appendingPathComponent("\(task.name).txt"), encoding: .utf8)
                #expect(seen == "00-\(Self.callerTrace)-\(attempt.spanID)-01")
            }
            #expect(Set(spans.map(\.spanID)).count == 4, "span ids are distinct")

            // A span per request through swift-otel, named by its route, in the caller's trace.
            let create = await receiver.waitFor { spans in
                spans.first { $0.name == "/v1/runs" && $0.traceID == Self.callerTrace }
            }
            #expect(create?.parentSpanID == Self.callerSpan, "request spans: \(receiver.spans.filter { $0.attributes["runwarden.run_id"] == nil })")
            // The exporters' own requests are not traced (each would make a span for the next export):
            // after a graceful stop, which flushes both exporters, none has arrived.
            cluster.server.signal(SIGTERM)
            #expect(await cluster.server.waitForExit() == 0)
            #expect(!receiver.spans.contains { $0.attributes["url.path"] == "/v1/traces" }, "\(receiver.spans)")
        }
    }

    @Test("without --otel-endpoint nothing is exported and a task gets no TRACEPARENT, not even the runner's own")
    func tracingOff() async throws {
        try await OTLPReceiver.with { receiver, port in
            let cluster = try Cluster()
            try await cluster.startServer()
            let inherited = ProcessInfo.processInfo.environment
            try cluster.startRunner(environment: [
                "PATH": inherited["PATH"] ?? "/usr/bin:/bin", "HOME": inherited["HOME"] ?? "/tmp",
                "TRACEPARENT": "00-\(Self.callerTrace)-\(Self.callerSpan)-01", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(port)",
            ])
            let runID = try await Self.create(
                Self.threeTasks, on: cluster, headers: ["traceparent": "00-\(Self.callerTrace)-\(Self.callerSpan)-01"])
            let run = try await cluster.waitForEnd(runID)
            #expect(run.status == .succeeded)
            for name in ["a", "b", "c"] {
                let seen = try String(contentsOf: cluster.workspace("trace-\(name)").appendingPathComponent("\(name).txt"), encoding: .utf8)
                #expect(seen == "unset")
            }
            // A graceful stop would flush any exporter: none ran, so nothing arrived.
            cluster.server.signal(SIGTERM)
            #expect(await cluster.server.waitForExit() == 0)
            #expect(receiver.requests == 0, "\(receiver.spans)")
        }
    }

    /// `POST /v1/runs` with extra headers; the new run's id.
    static func create(_ body: String, on cluster: Cluster, headers: [String: String]) async throws -> String {
        var request = HTTPClientRequest(url: "\(cluster.url)/v1/runs")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let answer = try await response.body.collect(upTo: 1 << 20)
        try #require(response.status == .accepted, "create: \(response.status) \(String(buffer: answer))")
        let object = try JSONSerialization.jsonObject(with: Data(buffer: answer)) as? [String: Any]
        return try #require(object?["id"] as? String)
    }
}
