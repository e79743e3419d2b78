import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RunwardenCore
import RunwardenStore
import ServiceLifecycle

/// Task logs (SPEC §9): runners append an attempt's output in chunks at byte offsets; clients
/// read it as text (with a long-poll), follow it as SSE, or download its bytes unchanged.
struct LogRoutes {
    let service: RunService
    let maxBody: Int
    let keepAlive: Duration

    /// The most bytes one text read answers.
    static let maximumRead = 1 << 20

    var routes: [Route] {
        [
            Route(.post, "/v1/tasks/:id/logs", role: .runner, append),
            Route(.get, "/v1/tasks/:id/logs", role: .client, read),
            Route(.get, "/v1/tasks/:id/logs/stream", role: .client, stream),
            Route(.get, "/v1/tasks/:id/logs/download", role: .client, download),
        ]
    }

    @Sendable func append(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let taskID = try context.parameters.require("id")
        guard let attempt = try request.integerQuery("attempt", minimum: 1) else {
            throw RunwardenError.invalidQuery("attempt", "is required: the attempt the output belongs to")
        }
        guard let offset = try request.integerQuery("offset", minimum: 0) else {
            throw RunwardenError.invalidQuery("offset", "is required: where in the attempt's output the chunk starts")
        }
        let final = try request.booleanQuery("final", default: false)
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBody)
        } catch is NIOTooManyBytesError {
            throw RunwardenError(.payloadTooLarge, "the chunk is larger than the limit of \(maxBody) bytes")
        }
        // A per-runner token ships only as a runner it may act as (SPEC §8); the store then
        // takes the chunk only from the runner of the attempt.
        let runner = request.headers[.runnerName]
        if context.runnerScope != nil {
            guard let runner else { throw RunwardenError(.forbidden, "a per-runner token ships logs with X-Runner-Name") }
            try RunnerRoutes.checkScope(context, runner)
        }
        let chunk = LogChunk(
            taskID: taskID, attempt: attempt, runner: runner, offset: Int64(offset),
            bytes: Array(body.readableBytesView), final: final)
        let appended = try await service.appendLog(chunk)
        return .json(LogAppendAnswer(nextOffset: appended.log.received))
    }

    @Sendable func read(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let taskID = try context.parameters.require("id")
        let attempt = try request.integerQuery("attempt", minimum: 1)
        let offset = Int64(try request.integerQuery("offset", minimum: 0) ?? 0)
        let limit = try request.limit(default: Self.maximumRead, maximum: Self.maximumRead)
        let wait = try request.waitDuration()
        let read = try await DisconnectWatch.longPoll(on: context.channel, wait: wait) { [service] in
            try await service.log(taskID: taskID, attempt: attempt, offset: offset, limit: limit, wait: wait, asText: true)
        }
        let slice = read.slice
        let count = LogText.answerable(slice.bytes, isLast: read.complete)
        let complete = read.complete && count == slice.bytes.count
        var headers = Self.headers(slice, next: slice.start + Int64(count), complete: complete)
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(
            status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: LogText.decode(slice.bytes.prefix(count)))))
    }

    /// The whole kept log of an attempt, bytes as they arrived; a line in the middle says how
    /// many were dropped there.
    @Sendable func download(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let taskID = try context.parameters.require("id")
        let attempt = try request.integerQuery("attempt", minimum: 1)
        var bytes = ByteBuffer()
        var offset: Int64 = 0
        var first: LogSlice?
        var last: RunService.LogRead
        repeat {
            last = try await service.log(taskID: taskID, attempt: attempt, offset: offset, limit: Self.maximumRead, wait: .zero)
            if first == nil { first = last.slice }
            if last.slice.start > offset, offset > 0 {
                bytes.writeString("\n[runwarden: \(last.slice.start - offset) bytes dropped here to keep the log within its cap]\n")
            }
            bytes.writeBytes(last.slice.bytes)
            offset = last.slice.end
        } while !last.slice.bytes.isEmpty
        // The headers of the whole answer: from where its first read started to where its last ended.
        var headers = Self.headers(first ?? last.slice, next: offset, complete: last.complete)
        headers[.contentType] = "application/octet-stream"
        headers[.contentDisposition] = "attachment; filename=\"\(taskID).\(last.slice.attempt).log\""
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: bytes))
    }

    /// SSE: `event: log` frames from `Last-Event-ID` (an offset) or `?offset=`, closed after the
    /// attempt's last byte.
    @Sendable func stream(_ request: Request, _ context: RunwardenRequestContext) async throws -> Response {
        let taskID = try context.parameters.require("id")
        let offset = try StreamRoutes.lastEventID(request, naming: "a log offset")
            ?? Int64(try request.integerQuery("offset", minimum: 0) ?? 0)
        // The attempt is fixed when the stream starts, so a retry does not splice two outputs.
        let first = try await service.log(
            taskID: taskID, attempt: try request.integerQuery("attempt", minimum: 1), offset: offset, limit: 0, wait: .zero)
        let attempt = first.slice.attempt
        let start = offset
        let service = service
        let keepAlive = keepAlive
        let body = ResponseBody { writer in
            var cursor = start
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                let from = cursor
                let read = await (try? cancelWhenGracefulShutdown {
                    try await service.log(
                        taskID: taskID, attempt: attempt, offset: from, limit: Self.maximumRead, wait: keepAlive, asText: true)
                })
                guard let read else { break }
                let count = LogText.answerable(read.slice.bytes, isLast: read.complete)
                if count > 0 {
                    cursor = read.slice.start + Int64(count)
                    let frame = LogStreamChunk(
                        attempt: attempt, offset: read.slice.start, text: LogText.decode(read.slice.bytes.prefix(count)))
                    var frames = ByteBuffer(string: "id: \(cursor)\nevent: log\ndata: ")
                    frames.writeBytes(JSONValueEncoder.data(frame))
                    frames.writeString("\n\n")
                    try await writer.write(frames)
                } else if !read.complete {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                }
                if read.complete, count == read.slice.bytes.count { break }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: body)
    }

    static func headers(_ slice: LogSlice, next: Int64, complete: Bool) -> HTTPFields {
        [
            .logOffset: String(slice.start), .logNextOffset: String(next), .logComplete: complete ? "true" : "false",
            .logTruncatedBytes: String(slice.log?.truncated ?? 0), .logAttempt: String(slice.attempt),
        ]
    }
}

extension HTTPField.Name {
    static let logOffset = Self("Log-Offset")!
    static let logNextOffset = Self("Log-Next-Offset")!
    static let logComplete = Self("Log-Complete")!
    static let logTruncatedBytes = Self("Log-Truncated-Bytes")!
    static let logAttempt = Self("Log-Attempt")!
}
