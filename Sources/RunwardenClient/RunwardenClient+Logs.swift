import Foundation
import NIOHTTP1
import RunwardenCore

/// Reading task logs (SPEC §9): the CLI's side of `GET /v1/tasks/{id}/logs`.
extension RunwardenClient {
    /// One read of an attempt's output, its headers checked: a server (or a proxy) that answers
    /// offsets that go backwards, or another attempt than asked for, is an invalid response,
    /// not a reason to loop or print the wrong output.
    public struct LogPage: Sendable, Equatable {
        public var attempt: Int
        /// Where `text` starts; past the offset asked for when the bytes there were dropped.
        public var offset: Int64
        /// Where the next read starts.
        public var nextOffset: Int64
        /// The attempt ended and every byte of its output was read.
        public var complete: Bool
        /// Bytes dropped from the middle of the attempt's output (`--log-max-bytes`).
        public var truncatedBytes: Int64
        public var text: String

        public init(attempt: Int, offset: Int64, nextOffset: Int64, complete: Bool, truncatedBytes: Int64, text: String) {
            self.attempt = attempt
            self.offset = offset
            self.nextOffset = nextOffset
            self.complete = complete
            self.truncatedBytes = truncatedBytes
            self.text = text
        }
    }

    /// Up to `limit` bytes of `attempt` (the latest when nil) from `offset`; with `wait`,
    /// long-polls up to that many seconds for bytes past `offset`.
    public func log(taskID: String, attempt: Int? = nil, offset: Int64 = 0, limit: Int? = nil, wait: Int? = nil) async throws -> LogPage {
        var query: [(String, String)] = [("offset", String(offset))]
        if let attempt { query.append(("attempt", String(attempt))) }
        if let limit { query.append(("limit", String(limit))) }
        if let wait { query.append(("wait", String(wait))) }
        let answer = try await send(
            .GET, "/v1/tasks/" + Self.pathSegment(taskID) + "/logs", query: query, timeout: .seconds((wait ?? 0) + 30))
        return try Self.logPage(answer, asked: offset, attempt: attempt)
    }

    /// The page an answer holds, or `ClientError.invalidResponse` when its headers cannot be
    /// the answer to a read from `asked`.
    static func logPage(_ answer: Answer, asked: Int64, attempt: Int?) throws -> LogPage {
        func header(_ name: String) throws -> Int64 {
            guard let text = answer.headers.first(name: name), let value = Int64(text.trimmingCharacters(in: .whitespaces)), value >= 0
            else { throw ClientError.invalidResponse("the log answer has no valid \(name) header") }
            return value
        }
        let start = try header("Log-Offset")
        let next = try header("Log-Next-Offset")
        let answered = try header("Log-Attempt")
        guard start >= asked, next >= start else {
            throw ClientError.invalidResponse("the log answer's offsets (\(start)…\(next)) do not follow the offset asked for (\(asked))")
        }
        guard answered >= 1, answered <= Int64(Int32.max), attempt.map({ Int64($0) == answered }) ?? true else {
            throw ClientError.invalidResponse("the log answer is for attempt \(answered), not the one asked for")
        }
        let complete: Bool
        switch answer.headers.first(name: "Log-Complete") {
        case "true": complete = true
        case "false": complete = false
        default: throw ClientError.invalidResponse("the log answer has no valid Log-Complete header")
        }
        return LogPage(
            attempt: Int(answered), offset: start, nextOffset: next, complete: complete,
            truncatedBytes: (try? header("Log-Truncated-Bytes")) ?? 0, text: String(decoding: answer.body, as: UTF8.self))
    }
}
