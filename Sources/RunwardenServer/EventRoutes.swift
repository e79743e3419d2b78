import Hummingbird
import RunwardenCore

/// `GET /v1/events`: every run's events in `seq` order — how a consumer catches up.
struct EventRoutes {
    let service: RunService

    var routes: [Route] {
        [
            Route(
                .get, "/v1/events", role: .client,
                { request, context in try await Self.page(request, context, service: service, runID: nil) })
        ]
    }

    /// `{"events": [...], "next_after": SEQ}`; an empty page echoes `after` (SPEC §2).
    static func page(
        _ request: Request, _ context: RunwardenRequestContext, service: RunService, runID: String?
    ) async throws -> Response {
        let after = Int64(try request.integerQuery("after", minimum: 0) ?? 0)
        let limit = try request.limit(default: 100, maximum: 500)
        let wait = try request.waitDuration()
        try await service.checkEventsKept(runID: runID, after: after)
        let events = try await DisconnectWatch.longPoll(on: context.channel, wait: wait) {
            try await service.events(runID: runID, after: after, limit: limit, wait: wait)
        }
        return .json(EventPage(events: events.map(RunEvent.init), nextAfter: events.last?.seq ?? after))
    }
}
