import HTTPTypes
import Hummingbird
import Logging
import RunwardenCore
import RunwardenStore

/// Next to outermost (only the request metrics wrap it): turns every error into SPEC §2's
/// JSON envelope, so no route answers with the framework's default body and nothing a client
/// sends yields a bare 5xx.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = RunwardenRequestContext
    let routes: RouteMatcher

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await answer(request, context: context, next: next)
        // HEAD (RFC 9110 §9.3.2): the GET's status and headers, its Content-Length, no body —
        // error envelopes included; a stream's body is never started.
        return request.method == .head ? response.createHeadResponse() : response
    }

    private func answer(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let requestID = context.id
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = requestID
            return response
        } catch {
            let apiError = translate(error, request: request, context: context)
            var headers: HTTPFields = [.requestID: requestID]
            if apiError.code == .unauthorized {
                headers[.wwwAuthenticate] = #"Bearer realm="runwarden""#  // RFC 9110 §11.6.1: a 401 names its scheme
            }
            if apiError.code == .methodNotAllowed {
                headers[.allow] = routes.methods(for: request.uri.path).map(\.rawValue).joined(separator: ", ")
            }
            return .json(
                ErrorEnvelope(apiError, requestID: requestID), status: HTTPResponse.Status(code: apiError.code.httpStatus),
                headers: headers)
        }
    }

    /// The one place an error becomes an API error: domain errors say which they are, the
    /// framework's own errors are named here, and anything else is logged and hidden.
    private func translate(_ error: any Error, request: Request, context: Context) -> RunwardenError {
        switch error {
        case let error as RunwardenError:
            return error
        case let error as any APIErrorConvertible:
            return error.apiError
        case let error as HTTPError where error.status == .notFound:
            // Hummingbird's router answers notFound both for an unknown path and for a known
            // path with another method; the route table tells them apart.
            let allowed = routes.methods(for: request.uri.path)
            if allowed.isEmpty { return .routeNotFound }
            return RunwardenError(
                .methodNotAllowed,
                "\(request.method.rawValue) is not allowed here; use \(allowed.map(\.rawValue).joined(separator: " or "))")
        case let error as any HTTPResponseError where error.status == .contentTooLarge:
            return RunwardenError(.payloadTooLarge, "the body is larger than the limit")
        case let error as any HTTPResponseError where error.status.code < 500:
            return RunwardenError(.badRequest, "the request cannot be handled: \(error.status.reasonPhrase)")
        case StoreError.unavailable(let reason):
            context.logger.error("store unavailable", metadata: ["error": "\(reason)", "request_id": "\(context.id)"])
            return .unavailable
        default:
            context.logger.error(
                "request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)", "request_id": "\(context.id)"])
            return .internalError
        }
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let runnerName = Self("X-Runner-Name")!
    static let lastEventID = Self("Last-Event-ID")!
    /// W3C trace context (SPEC §11).
    static let traceparent = Self("traceparent")!
    static let tracestate = Self("tracestate")!
    static let runwardenDrain = Self(RunnerItem.drainHeader)!
}
