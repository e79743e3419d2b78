import Foundation
import Hummingbird
import NIOCore
import RunwardenCore
import ServiceLifecycle

/// Server-Sent Events (SPEC §2): a run's history then its live events, closed after the run's
/// terminal event; or every run's new events. `Last-Event-ID` (a `seq`) resumes; a comment
/// line keeps idle connections (and the proxies between) alive.
struct StreamRoutes {
    let service: RunService
    let keepAlive: Duration

    var routes: [Route] {
        [
            Route(.get, "/v1/runs/:id/stream", role: .client, runStream),
            Route(.get, "/v1/events/stream", role: .client, allStream),
        ]
    }

    @Sendable func runStream(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let runID = try context.parameters.require("id")
        let after = try Self.resumePoint(request)
        try await service.checkEventsKept(runID: runID, after: after ?? 0)  // 404 or 410 before the stream starts
        return stream(runID: runID, after: after)
    }

    @Sendable func allStream(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        // Without a resume point the stream starts at "now" — read before the headers go out,
        // so a client that acts once connected cannot miss its own first event.
        var start = try Self.resumePoint(request)
        if let start { try await service.checkEventsKept(runID: nil, after: start) }
        if start == nil { start = try await service.latestSeq() }
        return stream(runID: nil, after: start)
    }

    /// `Last-Event-ID`, else `?after=`, else the beginning (a run's stream) or now (all runs).
    static func resumePoint(_ request: Request) throws -> Int64? {
        try lastEventID(request, naming: "an event seq") ?? request.integerQuery("after", minimum: 0).map(Int64.init)
    }

    /// `Last-Event-ID` as a non-negative number (`what` it names, for the error), nil when absent.
    static func lastEventID(_ request: Request, naming what: String) throws -> Int64? {
        guard let header = request.headers[.lastEventID] else { return nil }
        guard let value = Int64(header.trimmingCharacters(in: .whitespaces)), value >= 0 else {
            throw RunwardenError(
                .validationFailed, "Last-Event-ID must be \(what)",
                details: [FieldError("Last-Event-ID", "must be a non-negative integer")])
        }
        return value
    }

    private func stream(runID: String?, after: Int64?) -> Response {
        let service = service
        let keepAlive = keepAlive
        let body = ResponseBody { writer in
            var cursor = after ?? 0
            // Tell the client how long to wait before reconnecting.
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                // The status is read before the events: a run that was already over then has
                // its terminal event among them, so an empty page means the client has it all.
                var wasOver = false
                if let runID { wasOver = try await service.runSummary(runID).status.isTerminal }
                var events = try await service.events(runID: runID, after: cursor, limit: 500, wait: .zero)
                if events.isEmpty, wasOver { break }
                if events.isEmpty {
                    // A server shutting down ends the wait (and the stream) at once.
                    let from = cursor
                    events = await (try? cancelWhenGracefulShutdown {
                        try await service.events(runID: runID, after: from, limit: 500, wait: keepAlive)
                    }) ?? []
                }
                if events.isEmpty {
                    if Task.isShuttingDownGracefully { break }
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    continue
                }
                var frames = ByteBuffer()
                var ended = false
                for event in events {
                    frames.writeString("id: \(event.seq)\nevent: \(event.draft.type)\ndata: ")
                    frames.writeBytes(JSONValueEncoder.data(RunEvent(event)))
                    frames.writeString("\n\n")
                    cursor = event.seq
                    if runID != nil, Self.isTerminalRunEvent(event) {
                        ended = true
                        break
                    }
                }
                try await writer.write(frames)
                if ended { break }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: body)
    }

    static func isTerminalRunEvent(_ event: Event) -> Bool {
        event.draft.runID != nil && event.draft.taskID == nil && (RunStatus(rawValue: event.draft.status)?.isTerminal ?? false)
    }
}
