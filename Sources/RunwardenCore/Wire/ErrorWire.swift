/// Every error code the API answers with (SPEC §2 "Errors"), and the HTTP status it goes with:
/// the one home of both. Routes and services throw `RunwardenError`s carrying these codes;
/// one middleware renders them all.
public enum ErrorCode: String, Sendable, CaseIterable, Codable {
    case invalidJSON = "invalid_json"
    case badRequest = "bad_request"
    case unauthorized
    case forbidden
    case forbiddenOrigin = "forbidden_origin"
    case runNotFound = "run_not_found"
    case taskNotFound = "task_not_found"
    case webhookNotFound = "webhook_not_found"
    case deliveryNotFound = "delivery_not_found"
    case runnerNotFound = "runner_not_found"
    case runnerTokenNotFound = "runner_token_not_found"
    case lockNotFound = "lock_not_found"
    case routeNotFound = "route_not_found"
    case methodNotAllowed = "method_not_allowed"
    case taskNotClaimed = "task_not_claimed"
    case taskNotClaimable = "task_not_claimable"
    case runTerminal = "run_terminal"
    /// A re-run asked of a run that has not finished (SPEC §10).
    case runNotTerminal = "run_not_terminal"
    /// An approve or reject of a task that is not an approval task waiting for one (SPEC §10).
    case taskNotAwaitingApproval = "task_not_awaiting_approval"
    case webhookInactive = "webhook_inactive"
    case payloadTooLarge = "payload_too_large"
    case validationFailed = "validation_failed"
    case idempotencyKeyReused = "idempotency_key_reused"
    /// Retention removed the run's events (SPEC §7).
    case eventsExpired = "events_expired"
    /// Events after the given cursor were removed by retention (SPEC §7).
    case cursorExpired = "cursor_expired"
    /// A log chunk does not start where the stored log ends (SPEC §9).
    case logOffsetMismatch = "log_offset_mismatch"
    /// `--log-retention` removed the attempt's log (SPEC §9).
    case logsExpired = "logs_expired"
    case internalError = "internal_error"
    case unavailable
    case notReady = "not_ready"
    /// A code this build does not know: a newer server's, or a proxy's non-JSON error page.
    case unrecognized

    public var httpStatus: Int {
        switch self {
        case .invalidJSON, .badRequest: 400
        case .unauthorized: 401
        case .forbidden, .forbiddenOrigin: 403
        case .runNotFound, .taskNotFound, .webhookNotFound, .deliveryNotFound, .runnerNotFound, .runnerTokenNotFound, .lockNotFound, .routeNotFound: 404
        case .methodNotAllowed: 405
        case .taskNotClaimed, .taskNotClaimable, .runTerminal, .runNotTerminal, .taskNotAwaitingApproval, .webhookInactive, .logOffsetMismatch: 409
        case .eventsExpired, .cursorExpired, .logsExpired: 410
        case .payloadTooLarge: 413
        case .validationFailed, .idempotencyKeyReused: 422
        case .internalError, .unrecognized: 500
        case .unavailable, .notReady: 503
        }
    }

    /// An unknown code decodes as `.unrecognized`: an older client still reads the envelope.
    public init(from decoder: any Decoder) throws {
        self = ErrorCode(rawValue: try decoder.singleValueContainer().decode(String.self)) ?? .unrecognized
    }
}

/// An error the API answers with: services and routes throw it, `ErrorMiddleware` renders it.
public struct RunwardenError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var details: [FieldError]

    public init(_ code: ErrorCode, _ message: String, details: [FieldError] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The kinds of thing an id can name, each with its own not-found code.
    public enum Kind: String, Sendable {
        case run, task, webhook, delivery, runner
        case runnerToken = "runner token"

        var notFound: ErrorCode {
            switch self {
            case .runner: .runnerNotFound
            case .runnerToken: .runnerTokenNotFound
            case .run: .runNotFound
            case .task: .taskNotFound
            case .webhook: .webhookNotFound
            case .delivery: .deliveryNotFound
            }
        }
    }

    public static func notFound(_ kind: Kind, _ id: String) -> RunwardenError {
        // Runners are known by their names; everything else by an id.
        RunwardenError(kind.notFound, "no \(kind.rawValue) \(kind == .runner ? "named" : "with id") \"\(id)\"")
    }

    public static func invalidQuery(_ name: String, _ message: String) -> RunwardenError {
        RunwardenError(.validationFailed, "query parameter \(name) \(message)", details: [FieldError(name, message)])
    }

    public static let unauthorized = RunwardenError(
        .unauthorized, "a valid token is required: send Authorization: Bearer <token>")
    public static let routeNotFound = RunwardenError(.routeNotFound, "no such route")
    public static let internalError = RunwardenError(.internalError, "the server failed to answer this request")
    public static let unavailable = RunwardenError(.unavailable, "the database cannot be reached right now")
}

/// A domain error that has a place in the API: the middleware asks it for its envelope.
public protocol APIErrorConvertible: Error {
    var apiError: RunwardenError { get }
}

extension ValidationFailure: APIErrorConvertible {
    public var apiError: RunwardenError {
        let summary = errors.prefix(3).map { "\($0.field) \($0.message)" }.joined(separator: "; ")
        return RunwardenError(.validationFailed, "the request breaks \(errors.count) rule(s): \(summary)", details: errors)
    }
}

extension TransitionError: APIErrorConvertible {
    public var apiError: RunwardenError {
        switch self {
        case .taskNotClaimed(let reason): RunwardenError(.taskNotClaimed, reason)
        case .runTerminal(let status): RunwardenError(.runTerminal, "the run already ended \(status.rawValue)")
        case .notClaimable: RunwardenError(.taskNotClaimable, "the task cannot be claimed")
        case .notAwaitingApproval(let reason): RunwardenError(.taskNotAwaitingApproval, reason)
        }
    }
}

/// SPEC §2's envelope: `{"error": {"code", "message", "request_id", "details"?}}`.
public struct ErrorEnvelope: Codable, Sendable, Equatable {
    public var error: Body

    public struct Body: Codable, Sendable, Equatable {
        public var code: ErrorCode
        public var message: String
        public var requestID: String?
        /// Which fields broke which rule, for `validation_failed`.
        public var details: [FieldError]?

        public init(code: ErrorCode, message: String, requestID: String?, details: [FieldError]?) {
            self.code = code
            self.message = message
            self.requestID = requestID
            self.details = details
        }

        public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
            case code, message
            case requestID = "request_id"
            case details

            public static let omittedWhenNil: Set<String> = ["details"]
        }
    }

    public init(_ error: RunwardenError, requestID: String) {
        self.error = Body(
            code: error.code, message: error.message, requestID: requestID,
            details: error.details.isEmpty ? nil : error.details)
    }

    public enum CodingKeys: String, CodingKey, CaseIterable { case error }
}

/// `GET /healthz` and `/readyz`.
public struct Health: Codable, Sendable, Equatable {
    public var status: String
    public init(status: String) { self.status = status }
    public enum CodingKeys: String, CodingKey, CaseIterable { case status }
}
