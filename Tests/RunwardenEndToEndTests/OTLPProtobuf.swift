/// Reads an OTLP/HTTP protobuf export request (`application/x-protobuf`, what swift-otel sends)
/// into `ReceivedSpan`s: just enough of the protobuf wire format, with the field numbers of
/// opentelemetry-proto's `trace.proto`, `resource.proto` and `common.proto`.
enum OTLPProtobuf {
    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// A field's value as the wire format carries it.
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes([UInt8])
    }

    static func spans(_ body: [UInt8]) throws -> [ReceivedSpan] {
        var spans: [ReceivedSpan] = []
        for case (1, .bytes(let resourceSpans)) in try fields(body) {  // ExportTraceServiceRequest.resource_spans
            var service: String?
            var scopes: [[UInt8]] = []
            for field in try fields(resourceSpans) {
                switch field {
                case (1, .bytes(let resource)):  // ResourceSpans.resource
                    for case (1, .bytes(let attribute)) in try fields(resource) where try keyValue(attribute).key == "service.name" {
                        service = try keyValue(attribute).value
                    }
                case (2, .bytes(let scope)): scopes.append(scope)  // ResourceSpans.scope_spans
                default: break
                }
            }
            for scope in scopes {
                for case (2, .bytes(let span)) in try fields(scope) { spans.append(try self.span(span, service: service)) }  // ScopeSpans.spans
            }
        }
        return spans
    }

    private static func span(_ bytes: [UInt8], service: String?) throws -> ReceivedSpan {
        var span = OTLPReceiver.Span(traceId: "", spanId: "", name: "", startTimeUnixNano: "0", endTimeUnixNano: "0")
        var attributes: [OTLPReceiver.KeyValue] = []
        for field in try fields(bytes) {
            switch field {
            case (1, .bytes(let id)): span.traceId = hex(id)
            case (2, .bytes(let id)): span.spanId = hex(id)
            case (4, .bytes(let id)): span.parentSpanId = hex(id)
            case (5, .bytes(let name)): span.name = String(decoding: name, as: UTF8.self)
            case (6, .varint(let kind)): span.kind = Int(kind)
            case (7, .fixed64(let start)): span.startTimeUnixNano = String(start)
            case (8, .fixed64(let end)): span.endTimeUnixNano = String(end)
            case (9, .bytes(let attribute)):
                let (key, value) = try keyValue(attribute)
                attributes.append(OTLPReceiver.KeyValue(key: key, value: OTLPReceiver.AnyValue(stringValue: value)))
            case (15, .bytes(let status)):
                for case (3, .varint(let code)) in try fields(status) { span.status = OTLPReceiver.Status(code: Int(code)) }
            default: break
            }
        }
        span.attributes = attributes
        return ReceivedSpan(span, service: service)
    }

    /// A `KeyValue`, its value as text (string, bool or int `AnyValue`).
    private static func keyValue(_ bytes: [UInt8]) throws -> (key: String, value: String?) {
        var key = ""
        var value: String?
        for field in try fields(bytes) {
            switch field {
            case (1, .bytes(let text)): key = String(decoding: text, as: UTF8.self)
            case (2, .bytes(let any)):
                for field in try fields(any) {
                    switch field {
                    case (1, .bytes(let text)): value = String(decoding: text, as: UTF8.self)
                    case (2, .varint(let flag)): value = String(flag != 0)
                    case (3, .varint(let number)): value = String(Int64(bitPattern: number))
                    default: break
                    }
                }
            default: break
            }
        }
        return (key, value)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// The fields of one message, in order.
    static func fields(_ bytes: [UInt8]) throws -> [(Int, Value)] {
        var fields: [(Int, Value)] = []
        var index = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 7) {
                guard index < bytes.count else { throw Malformed(description: "a varint runs past the end") }
                let byte = bytes[index]
                index += 1
                result |= UInt64(byte & 0x7f) << UInt64(shift)
                if byte & 0x80 == 0 { return result }
            }
            throw Malformed(description: "a varint longer than 10 bytes")
        }
        func take(_ count: Int) throws -> [UInt8] {
            guard count >= 0, count <= bytes.count - index else { throw Malformed(description: "a field runs past the end") }
            defer { index += count }
            return Array(bytes[index..<index + count])
        }
        func little<T: FixedWidthInteger>(_ part: [UInt8], as: T.Type) -> T {
            part.reversed().reduce(T.zero) { $0 << 8 | T($1) }
        }
        while index < bytes.count {
            let tag = try varint()
            let number = Int(tag >> 3)
            switch tag & 7 {
            case 0: fields.append((number, .varint(try varint())))
            case 1: fields.append((number, .fixed64(little(try take(8), as: UInt64.self))))
            case 2:
                let length = try varint()
                guard length <= UInt64(bytes.count) else { throw Malformed(description: "a length past the end") }
                fields.append((number, .bytes(try take(Int(length)))))
            case 5: fields.append((number, .fixed32(little(try take(4), as: UInt32.self))))
            default: throw Malformed(description: "wire type \(tag & 7)")
            }
        }
        return fields
    }
}
