import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// An OTLP/HTTP trace collector on loopback, started by a test: it decodes every export request
/// `POST /v1/traces` — swift-otel's request spans (protobuf) and the server's run spans (JSON)
/// — into `ReceivedSpan`s. A body that is neither is kept as a failure.
final class OTLPReceiver: Sendable {
    private let state = Mutex(State())
    private struct State {
        var spans: [ReceivedSpan] = []
        var requests = 0
        var failures: [String] = []
    }

    var spans: [ReceivedSpan] { state.withLock { $0.spans } }
    var requests: Int { state.withLock { $0.requests } }
    var failures: [String] { state.withLock { $0.failures } }

    /// Runs `body` with a receiver listening on 127.0.0.1 at the port it is given.
    static func with<Value: Sendable>(_ body: @Sendable (OTLPReceiver, Int) async throws -> Value) async throws -> Value {
        let receiver = OTLPReceiver()
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 16 << 20)
            receiver.record(Data(buffer: bytes), contentType: request.headers[.contentType])
            // An empty ExportTraceServiceResponse: everything accepted.
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        let (ports, listening) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "otlp-receiver")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in listening.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw ReceiverError.didNotListen }
            defer { group.cancelAll() }
            return try await body(receiver, port)
        }
    }

    enum ReceiverError: Error { case didNotListen }

    private func record(_ body: Data, contentType: String?) {
        let decoded: [ReceivedSpan]
        do {
            switch contentType {
            case "application/x-protobuf": decoded = try OTLPProtobuf.spans(Array(body))
            case "application/json":
                let request = try JSONDecoder().decode(ExportRequest.self, from: body)
                decoded = request.resourceSpans.flatMap { resource in
                    let service = resource.resource?.attributes.first { $0.key == "service.name" }?.value.stringValue
                    return resource.scopeSpans.flatMap { scope in scope.spans.map { ReceivedSpan($0, service: service) } }
                }
            default: throw DecodingError.unknownContentType(contentType ?? "none")
            }
        } catch {
            state.withLock {
                $0.requests += 1
                $0.failures.append("\(error): \(String(decoding: body.prefix(500), as: UTF8.self))")
            }
            return
        }
        state.withLock {
            $0.requests += 1
            $0.spans += decoded
        }
    }

    enum DecodingError: Error { case unknownContentType(String) }

    /// Polls until `probe` finds what it wants in the spans received so far, up to `limit`.
    func waitFor<Value>(within limit: Duration = .seconds(20), _ probe: ([ReceivedSpan]) -> Value?) async -> Value? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let value = probe(spans) { return value }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return probe(spans)
    }

    // The OTLP/JSON shape (opentelemetry-proto's trace.proto, ids as hex, 64-bit integers as strings).
    struct ExportRequest: Decodable { var resourceSpans: [ResourceSpans] }
    struct ResourceSpans: Decodable {
        var resource: Resource?
        var scopeSpans: [ScopeSpans]
    }
    struct Resource: Decodable { var attributes: [KeyValue] }
    struct ScopeSpans: Decodable { var spans: [Span] }
    struct Span: Decodable {
        var traceId: String
        var spanId: String
        var parentSpanId: String?
        var name: String
        var kind: Int?
        var startTimeUnixNano: String
        var endTimeUnixNano: String
        var attributes: [KeyValue]?
        var status: Status?

        init(traceId: String, spanId: String, name: String, startTimeUnixNano: String, endTimeUnixNano: String) {
            self.traceId = traceId
            self.spanId = spanId
            self.name = name
            self.startTimeUnixNano = startTimeUnixNano
            self.endTimeUnixNano = endTimeUnixNano
        }
    }
    struct Status: Decodable { var code: Int? }
    struct KeyValue: Decodable {
        var key: String
        var value: AnyValue
    }
    struct AnyValue: Decodable {
        var stringValue: String?
        var intValue: String?
        var boolValue: Bool?

        init(stringValue: String?) { self.stringValue = stringValue }
    }
}

/// One span as the receiver got it.
struct ReceivedSpan: Sendable, CustomStringConvertible {
    let traceID: String
    let spanID: String
    /// Nil for a span without a parent (OTLP/JSON sends none, or an empty string).
    let parentSpanID: String?
    let name: String
    let start: UInt64
    let end: UInt64
    let attributes: [String: String]
    let statusCode: Int
    let service: String?

    init(_ span: OTLPReceiver.Span, service: String?) {
        traceID = span.traceId
        spanID = span.spanId
        parentSpanID = span.parentSpanId.flatMap { $0.isEmpty ? nil : $0 }
        name = span.name
        start = UInt64(span.startTimeUnixNano) ?? 0
        end = UInt64(span.endTimeUnixNano) ?? 0
        var attributes: [String: String] = [:]
        for attribute in span.attributes ?? [] {
            attributes[attribute.key] = attribute.value.stringValue ?? attribute.value.intValue ?? attribute.value.boolValue.map(String.init)
        }
        self.attributes = attributes
        statusCode = span.status?.code ?? 0
        self.service = service
    }

    var description: String { "\(name) \(traceID)/\(spanID) parent \(parentSpanID ?? "-") \(attributes)" }
}
