import Foundation
import Hummingbird
import NIOCore
import RunwardenCore

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
        _ = try await service.run(runID)  // 404 before the stream starts
        return stream(runID: runID, after: try Self.resumePoint(request))
    }

    @Sendable func allStream(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        stream(runID: nil, after: try Self.resumePoint(request))
    }

    /// `Last-Event-ID`, else `?after=`, else the beginning (a run's stream) or now (all runs).
    static func resumePoint(_ request: Request) throws -> Int64? {
        if let header = request.headers[.lastEventID] {
            guard let seq = Int64(header.trimmingCharacters(in: .whitespaces)), seq >= 0 else {
                throw APIError(.unprocessableContent, "validation_failed", "Last-Event-ID must be an event seq",
                               details: [FieldError("Last-Event-ID", "must be a non-negative integer")])
            }
            return seq
        }
        return try request.integerQuery("after", minimum: 0).map(Int64.init)
    }

    private func stream(runID: String?, after: Int64?) -> Response {
        let service = service
        let keepAlive = keepAlive
        let body = ResponseBody { writer in
            var cursor = after ?? 0
            if runID == nil, after == nil { cursor = try await service.latestSeq() }
            // Tell the client how long to wait before reconnecting.
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            while !Task.isCancelled {
                let events = try await service.events(runID: runID, after: cursor, limit: 500, wait: keepAlive)
                if events.isEmpty {
                    if let runID, try await service.run(runID).run.status.isTerminal,
                        try await service.events(runID: runID, after: cursor, limit: 1, wait: .zero).isEmpty
                    {
                        break  // resumed after the end: nothing more will come
                    }
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    continue
                }
                var frames = ByteBuffer()
                var ended = false
                for event in events {
                    frames.writeString("id: \(event.seq)\nevent: \(event.draft.type)\ndata: ")
                    frames.writeBytes(event.json.encoded())
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
        event.draft.taskID == nil && (RunStatus(rawValue: event.draft.status)?.isTerminal ?? false)
    }
}
