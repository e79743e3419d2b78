import HTTPTypes
import Hummingbird

/// `GET /metrics`: Prometheus text format, no token (like `/healthz`; put it behind your
/// network's rules if run counts are sensitive).
struct MetricsRoutes {
    let service: RunService

    var routes: [Route] {
        [
            Route(.get, "/metrics", role: nil) { _, _ in
                let counts = try await service.statusCounts()
                let runners = try await service.runnerCounts()
                let waiters = await service.hub.parkedByKind()
                var headers = HTTPFields()
                headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
                return Response(
                    status: .ok, headers: headers,
                    body: .init(byteBuffer: ByteBuffer(bytes: service.metrics.exposition(counts: counts, runners: runners, waiters: waiters))))
            }
        ]
    }
}
