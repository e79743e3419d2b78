import AsyncHTTPClient
import Foundation
import NIOCore
import RunwardenCore

extension RunwardenClient {
    /// What the server said to a chunk of an attempt's output (SPEC §9).
    public enum LogShipAnswer: Sendable, Equatable {
        /// Stored (or stored before): the next chunk starts here.
        case next(Int64)
        /// The server's log ends elsewhere: ship from there.
        case resumeAt(Int64)
    }

    /// Ships `bytes` of the attempt's log at `offset`; `final` says nothing follows them.
    public func shipLog(
        taskID: String, attempt: Int, offset: Int64, bytes: ArraySlice<UInt8>, final: Bool, runner: String
    ) async throws -> LogShipAnswer {
        var query = [("attempt", String(attempt)), ("offset", String(offset))]
        if final { query.append(("final", "true")) }
        do {
            let answer = try await send(
                .POST, "/v1/tasks/\(Self.pathSegment(taskID))/logs", query: query, bytes: ByteBuffer(bytes: bytes),
                headers: [("X-Runner-Name", runner)])
            let next = try decode(LogAppendAnswer.self, answer).nextOffset
            guard next >= 0 else { throw ClientError.invalidResponse("the server answered a negative log offset \(next)") }
            return .next(next)
        } catch ClientError.server(409, let envelope)
            where envelope.code == .logOffsetMismatch && LogAppend.expectedOffset(in: envelope.details ?? []) != nil
        {
            return .resumeAt(LogAppend.expectedOffset(in: envelope.details ?? []) ?? 0)
        }
    }
}
