import Foundation
import HTTPTypes
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import Testing

/// SPEC §11: a `traceparent` on `POST /v1/runs` puts the run in the caller's trace, and a claim
/// hands the attempt its own span in that trace; hostile headers are ignored, never an error.
@Suite("Trace context over the API")
struct TraceContextAPITests {
    static let callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let callerSpan = "00f067aa0ba902b7"
    static let callerParent = "00-\(callerTrace)-\(callerSpan)-01"

    /// A server that traces, to a collector nobody runs: these tests read the claims, not the spans.
    static func traced(_ configuration: inout ServerConfiguration) {
        configuration.tracing = TracingConfiguration(endpoint: "http://127.0.0.1:9")
    }

    /// Creates a one-task run with `headers` and claims its task: the claim's `task`.
    static func createAndClaim(_ client: some TestClientProtocol, headers: HTTPFields) async throws -> JSONValue {
        let created = try await client.send(.post, "/v1/runs", json: oneTaskRun, headers: headers)
        #expect(created.status == .accepted, "\(created.text)")
        return try #require(try await client.claim()?["task"])
    }

    /// The trace id and span id of a well-formed version-00 `traceparent`.
    static func parts(_ traceparent: String?) -> (trace: String, span: String, flags: String)? {
        let pieces = (traceparent ?? "").split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        let hex = { (text: String, count: Int) in text.count == count && text.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
        guard pieces.count == 4, pieces[0] == "00", hex(pieces[1], 32), hex(pieces[2], 16), hex(pieces[3], 2) else { return nil }
        return (pieces[1], pieces[2], pieces[3])
    }

    @Test("A traceparent on create puts the run in the caller's trace; the claim hands the attempt a span of its own in it, and the tracestate")
    func callerTraceHonoured() async throws {
        try await withApp(Self.traced) { client in
            let headers: HTTPFields = [HTTPField.Name("traceparent")!: Self.callerParent, HTTPField.Name("tracestate")!: "vendor=value"]
            let task = try await Self.createAndClaim(client, headers: headers)
            let attempt = try #require(Self.parts(task["traceparent"]?.asString), "\(task)")

            #expect(attempt.trace == Self.callerTrace)
            #expect(attempt.span != Self.callerSpan)
            #expect(attempt.flags == "01")
            #expect(task["tracestate"]?.asString == "vendor=value")
        }
    }

    @Test("An unsampled caller's trace is passed on unsampled")
    func unsampledCaller() async throws {
        try await withApp(Self.traced) { client in
            let headers: HTTPFields = [HTTPField.Name("traceparent")!: "00-\(Self.callerTrace)-\(Self.callerSpan)-00"]
            let task = try await Self.createAndClaim(client, headers: headers)

            #expect(Self.parts(task["traceparent"]?.asString)?.flags == "00")
            #expect(Self.parts(task["traceparent"]?.asString)?.trace == Self.callerTrace)
        }
    }

    @Test(
        "A malformed traceparent is ignored: the run is created in a trace of its own",
        arguments: [
            "", "garbage", "00", "00-\(callerTrace)-\(callerSpan)", "00-\(callerTrace)-\(callerSpan)-01-extra",
            "00-\(callerTrace.uppercased())-\(callerSpan)-01", "00-00000000000000000000000000000000-\(callerSpan)-01",
            "00-\(callerTrace)-0000000000000000-01", "ff-\(callerTrace)-\(callerSpan)-01", "00-\(callerTrace)-\(callerSpan)-0g",
            "00_\(callerTrace)_\(callerSpan)_01", " 00-\(callerTrace)-\(callerSpan)-0", "00-\(callerTrace)-\(callerSpan)-01, " + callerParent,
            String(repeating: "00-\(callerTrace)-\(callerSpan)-01", count: 200),
        ])
    func malformedTraceparentIgnored(traceparent: String) async throws {
        try await withApp(Self.traced) { client in
            let headers: HTTPFields = [HTTPField.Name("traceparent")!: traceparent, HTTPField.Name("tracestate")!: "vendor=value"]
            let task = try await Self.createAndClaim(client, headers: headers)
            let attempt = try #require(Self.parts(task["traceparent"]?.asString), "\(task)")

            #expect(attempt.trace != Self.callerTrace)
            #expect(attempt.trace != String(repeating: "0", count: 32))
            #expect(task["tracestate"] == nil, "a tracestate without a well-formed traceparent is dropped")
        }
    }

    @Test("A tracestate that is too long or malformed is dropped; the traceparent still counts")
    func badTracestateDropped() async throws {
        for state in [String(repeating: "v=x,", count: 200), "not a tracestate ="] {
            try await withApp(Self.traced) { client in
                let headers: HTTPFields = [HTTPField.Name("traceparent")!: Self.callerParent, HTTPField.Name("tracestate")!: state]
                let task = try await Self.createAndClaim(client, headers: headers)

                #expect(Self.parts(task["traceparent"]?.asString)?.trace == Self.callerTrace)
                #expect(task["tracestate"] == nil, "\(state)")
            }
        }
    }

    @Test("Each attempt of a task gets its own span id; a retried task's next claim names the next one")
    func attemptsHaveTheirOwnSpans() async throws {
        try await withApp(Self.traced) { client in
            let created = try await client.send(
                .post, "/v1/runs", json: runBody(tasks: #"[{"name": "a", "command": "true", "retries": 1}]"#),
                headers: [HTTPField.Name("traceparent")!: Self.callerParent])
            #expect(created.status == .accepted)
            let first = try #require(try await client.claim()?["task"])
            let taskID = try #require(first["id"]?.asString)
            // A lost heartbeat is retried while retries remain (SPEC §1).
            let failed = try await client.report(
                taskID, #"{"status": "failed", "attempt": 1, "error": {"code": "heartbeat_lost", "message": "gone"}}"#, runner: "host-a")
            #expect(failed.status == .ok)
            let second = try #require(try await client.claim()?["task"], "the task was not retried")

            #expect(second["attempt"]?.asInt == 2)
            let spans = [first, second].compactMap { Self.parts($0["traceparent"]?.asString) }
            #expect(spans.count == 2)
            #expect(Set(spans.map(\.trace)) == [Self.callerTrace])
            #expect(spans.first?.span != spans.last?.span)
        }
    }

    @Test("A re-run is a trace of its own, not the earlier run's")
    func rerunHasItsOwnTrace() async throws {
        try await withApp(Self.traced) { client in
            let created = try await client.send(.post, "/v1/runs", json: oneTaskRun, headers: [HTTPField.Name("traceparent")!: Self.callerParent])
            let runID = try #require(try created.json()["id"]?.asString)
            let first = try #require(try await client.claim()?["task"])
            try await client.reportOK(try #require(first["id"]?.asString), reportBody("failed", #""exit_code":1"#))
            let rerun = try await client.send(.post, "/v1/runs/\(runID)/rerun", json: #"{"tasks":"failed"}"#)
            #expect(rerun.status == .accepted, "\(rerun.text)")
            let again = try #require(try await client.claim()?["task"])

            let trace = try #require(Self.parts(again["traceparent"]?.asString), "\(again)")
            #expect(trace.trace != Self.callerTrace)
            #expect(trace.trace != Self.parts(first["traceparent"]?.asString)?.trace)
        }
    }

    @Test("A server that does not trace hands out no trace context, whatever the caller sent")
    func noTracingNoContext() async throws {
        try await withApp { client in
            let task = try await Self.createAndClaim(client, headers: [HTTPField.Name("traceparent")!: Self.callerParent])

            #expect(task["traceparent"] == nil)
            #expect(task["tracestate"] == nil)
        }
    }

    @Test("An --otel-endpoint that is not an http(s) URL with a host is refused at start", arguments: ["collector:4318", "ftp://host", "http://", ""])
    func invalidEndpointRefused(endpoint: String) async throws {
        var configuration = ServerConfiguration()
        configuration.tracing = TracingConfiguration(endpoint: endpoint)
        #expect(throws: ServerConfiguration.Problem.invalidOTelEndpoint(endpoint)) { try configuration.validate() }
    }
}
