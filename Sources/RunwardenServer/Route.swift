import Hummingbird

/// One endpoint: method, path, the token it needs, and its handler. Routes are plain values so
/// the whole table is known up front — to register it, to check tokens per route, and to tell
/// `405 method_not_allowed` from `404 route_not_found`.
struct Route: Sendable {
    typealias Handler = @Sendable (Request, RunwardenRequestContext) async throws -> Response

    var method: HTTPRequest.Method
    var path: String
    /// The token kind the route needs; nil for the open operational routes.
    var role: TokenRole?
    /// A per-runner token (`rwr_…`, SPEC §8) may call it too, though it needs the client token
    /// otherwise: approve and reject record the id of the token that decided (SPEC §10).
    var perRunnerTokens: Bool
    var handler: Handler

    init(_ method: HTTPRequest.Method, _ path: String, role: TokenRole?, perRunnerTokens: Bool = false, _ handler: @escaping Handler) {
        self.method = method
        self.path = path
        self.role = role
        self.perRunnerTokens = perRunnerTokens
        self.handler = handler
    }
}

extension Route {
    /// `HEAD` of a `GET` route — what load balancers and `curl -I` send; `ErrorMiddleware`
    /// drops the body of every `HEAD` answer.
    var head: Route { Route(.head, path, role: role, perRunnerTokens: perRunnerTokens, handler) }
}

/// Matches request paths against the route table's patterns (`:name` is one segment).
struct RouteMatcher: Sendable {
    private let patterns: [(method: HTTPRequest.Method, segments: [Substring])]

    init(_ routes: [Route]) {
        patterns = routes.map { ($0.method, $0.path.split(separator: "/")) }
    }

    /// The methods some route accepts at this path; empty when no route has the path.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        return patterns.filter { pattern in
            pattern.segments.count == segments.count
                && zip(pattern.segments, segments).allSatisfy { $0.first == ":" || $0 == $1 }
        }.map(\.method)
    }
}
