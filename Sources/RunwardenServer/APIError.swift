import Hummingbird
import RunwardenCore

/// Every error the API answers, with its SPEC §2 code and HTTP status. Routes throw these;
/// `ErrorMiddleware` renders the one JSON envelope for all of them.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var details: [FieldError] = []

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, details: [FieldError] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public static func notFound(_ kind: String, _ id: String) -> APIError {
        APIError(.notFound, "\(kind)_not_found", "no \(kind) with id \"\(id)\"")
    }

    public static func validation(_ failure: ValidationFailure) -> APIError {
        let summary = failure.errors.prefix(3).map { "\($0.field) \($0.message)" }.joined(separator: "; ")
        return APIError(.unprocessableContent, "validation_failed", "the request breaks \(failure.errors.count) rule(s): \(summary)", details: failure.errors)
    }

    /// A delivery or recovery asked of a subscription that was deleted or disabled (SPEC §6).
    public static func webhookInactive(_ message: String) -> APIError {
        APIError(.conflict, "webhook_inactive", message)
    }

    public static func invalidQuery(_ name: String, _ message: String) -> APIError {
        APIError(.unprocessableContent, "validation_failed", "query parameter \(name) \(message)", details: [FieldError(name, message)])
    }

    public static let unauthorized = APIError(
        .unauthorized, "unauthorized", "a valid token is required: send Authorization: Bearer <token>")
    public static let routeNotFound = APIError(.notFound, "route_not_found", "no such route")
    public static let internalError = APIError(.internalServerError, "internal_error", "the server failed to answer this request")
    public static let unavailable = APIError(.serviceUnavailable, "unavailable", "the database cannot be reached right now")

    func envelope(requestID: String) -> JSONValue {
        var members: [JSONValue.Member] = [
            .init("code", .string(code)), .init("message", .string(message)), .init("request_id", .string(requestID)),
        ]
        if !details.isEmpty {
            members.append(.init("details", .array(details.map { .object(["field": .string($0.field), "message": .string($0.message)]) })))
        }
        return .object(["error": .object(members)])
    }
}
