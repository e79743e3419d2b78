import Hummingbird

/// Records every request's latency by method, matched route and final status for `/metrics`.
/// Outermost, so it sees the status the client gets (errors already turned into envelopes).
/// The time runs until the response is ready: a long-poll counts the time it waited, a
/// stream only the time to its first byte.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = RunwardenRequestContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        // The router records the matched route pattern in a box the context copies share.
        metrics.recordRequest(
            method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: Int(response.status.code),
            duration: ContinuousClock.now - started)
        return response
    }
}
