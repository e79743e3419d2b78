import Foundation
import RunwardenCore

/// A run's spans as an OTLP/HTTP JSON export request (`POST /v1/traces`).
///
/// Why not swift-otel's exporter, which sends the request spans: its tracer makes every span
/// id itself, at random, and keeps the ids, the finished span and the protobuf types
/// internal. A run's spans need ids fixed before they are sent — the run's root span id is
/// stored at creation and its attempts' ids are given to tasks as `TRACEPARENT` long before
/// those spans end — so these few fields are written here, to the same collector.
enum OTLPJSON {
    static func exportRequest(_ spans: [RunSpan], serviceName: String) -> Data {
        let request = ExportRequest(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [KeyValue(key: "service.name", value: .string(serviceName))]),
                scopeSpans: [ScopeSpans(scope: Scope(name: "runwarden"), spans: spans.map(Span.init))])
        ])
        // Only strings and numbers from our own values: encoding them cannot fail.
        return (try? JSONEncoder().encode(request)) ?? Data()
    }

    struct ExportRequest: Encodable { var resourceSpans: [ResourceSpans] }
    struct ResourceSpans: Encodable {
        var resource: Resource
        var scopeSpans: [ScopeSpans]
    }
    struct Resource: Encodable { var attributes: [KeyValue] }
    struct ScopeSpans: Encodable {
        var scope: Scope
        var spans: [Span]
    }
    struct Scope: Encodable { var name: String }

    struct Span: Encodable {
        var traceId: String
        var spanId: String
        var parentSpanId: String?
        var name: String
        /// `SPAN_KIND_INTERNAL`: neither end of a request.
        var kind = 1
        /// Nanoseconds since the epoch, as a decimal string (OTLP/JSON's 64-bit integers).
        var startTimeUnixNano: String
        var endTimeUnixNano: String
        var attributes: [KeyValue]
        var status: Status

        init(_ span: RunSpan) {
            traceId = span.traceID
            spanId = span.spanID
            parentSpanId = span.parentSpanID
            name = span.name
            startTimeUnixNano = Self.nanoseconds(span.start)
            endTimeUnixNano = Self.nanoseconds(span.end)
            attributes = span.attributes.map { KeyValue(key: $0.key, value: AnyValue($0.value)) }
            // STATUS_CODE_OK, STATUS_CODE_ERROR
            status = Status(code: span.failed ? 2 : 1)
        }

        static func nanoseconds(_ time: Timestamp) -> String {
            let (nanoseconds, overflow) = max(0, time.milliseconds).multipliedReportingOverflow(by: 1_000_000)
            return String(overflow ? Int64.max : nanoseconds)
        }
    }

    struct Status: Encodable { var code: Int }
    struct KeyValue: Encodable {
        var key: String
        var value: AnyValue
    }
    struct AnyValue: Encodable {
        var stringValue: String?
        /// A decimal string, as OTLP/JSON writes 64-bit integers.
        var intValue: String?

        static func string(_ value: String) -> AnyValue { AnyValue(stringValue: value) }

        init(stringValue: String? = nil, intValue: String? = nil) {
            self.stringValue = stringValue
            self.intValue = intValue
        }

        init(_ attribute: RunSpan.Attribute) {
            switch attribute {
            case .string(let value): self.init(stringValue: value)
            case .int(let value): self.init(intValue: String(value))
            }
        }
    }
}
