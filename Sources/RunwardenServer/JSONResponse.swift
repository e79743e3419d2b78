import Foundation
import Hummingbird
import NIOCore
import RunwardenCore

extension Response {
    /// A JSON answer; every body the API sends goes through here (a wire type of
    /// `RunwardenCore/Wire`, in its declared field order).
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        json(bytes: JSONValueEncoder.data(value), status: status, headers: headers)
    }

    /// JSON already rendered (a cached snapshot).
    static func json(bytes: Data, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension Request {
    /// The body parsed as JSON, within the configured size limit.
    func jsonBody(limit: Int) async throws -> JSONValue {
        guard let value = try await optionalJSONBody(limit: limit) else {
            throw RunwardenError(.invalidJSON, "the body is empty; a JSON object is expected")
        }
        return value
    }

    /// The body as JSON, or nil when there is none (for routes whose body is optional).
    func optionalJSONBody(limit: Int) async throws -> JSONValue? {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw RunwardenError(.payloadTooLarge, "the body is larger than the limit of \(limit) bytes")
        }
        if buffer.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
        do {
            return try JSONValue.parse(Data(buffer.readableBytesView))
        } catch {
            throw RunwardenError(.invalidJSON, "the body is not valid JSON")
        }
    }
}
