import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import RunwardenCore
import Testing

@testable import RunwardenServer

extension HTTPField.Name {
    static let testLogOffset = Self("Log-Offset")!
    static let testLogNextOffset = Self("Log-Next-Offset")!
    static let testLogComplete = Self("Log-Complete")!
    static let testLogTruncated = Self("Log-Truncated-Bytes")!
}

extension TestClientProtocol {
    /// Ships `bytes` as runner `runner` at `offset` of the task's attempt.
    func shipLog(
        _ taskID: String, _ bytes: [UInt8], at offset: Int, attempt: Int = 1, runner: String = "host-a", final: Bool = false
    ) async throws -> TestResponse {
        try await execute(
            uri: "/v1/tasks/\(taskID)/logs?attempt=\(attempt)&offset=\(offset)\(final ? "&final=true" : "")", method: .post,
            headers: [.xRunnerName: runner, .contentType: "application/octet-stream"], body: ByteBuffer(bytes: bytes))
    }

    func shipLog(_ taskID: String, _ text: String, at offset: Int, final: Bool = false) async throws -> TestResponse {
        try await shipLog(taskID, Array(text.utf8), at: offset, final: final)
    }
}

/// Task logs over HTTP (SPEC §9).
@Suite("Task logs over the API")
struct LogAPITests {
    @Test func aRunnersChunksAreReadBackAsTextWithTheirOffsets() async throws {
        try await withApp { client in
            _ = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID()
            let first = try await client.shipLog(taskID, "line 1\n", at: 0)
            #expect(first.status == .ok)
            #expect(try first.json()["next_offset"]?.asInt == 7)
            #expect(try await client.shipLog(taskID, "line 1\n", at: 0).json()["next_offset"]?.asInt == 7, "sent again: acknowledged")
            let gap = try await client.shipLog(taskID, "line 9\n", at: 50)
            try expectError(gap, .conflict, "log_offset_mismatch")
            #expect(try gap.errorObject()?["details"]?.asArray?.first?["message"]?.asString == "expected 7")
            _ = try await client.shipLog(taskID, "line 2\n", at: 7)

            let read = try await client.send(.get, "/v1/tasks/\(taskID)/logs")
            #expect(read.status == .ok)
            #expect(read.text == "line 1\nline 2\n")
            #expect(read.headers[.contentType] == "text/plain; charset=utf-8")
            #expect(read.headers[.testLogOffset] == "0")
            #expect(read.headers[.testLogNextOffset] == "14")
            #expect(read.headers[.testLogComplete] == "false")
            let rest = try await client.send(.get, "/v1/tasks/\(taskID)/logs?offset=7&limit=3")
            #expect(rest.text == "lin")
            #expect(rest.headers[.testLogNextOffset] == "10")

            _ = try await client.shipLog(taskID, "", at: 14, final: true)
            let done = try await client.send(.get, "/v1/tasks/\(taskID)/logs?offset=14")
            #expect(done.text.isEmpty)
            #expect(done.headers[.testLogComplete] == "true")

            let metrics = try await scrapeMetrics(client)
            #expect(metrics["runwarden_log_bytes_received_total"] == 21, "7, the same 7 again, 7 more, 0 (the refused gap is not counted)")
            #expect(metrics["runwarden_log_bytes_stored_total"] == 14)
            #expect(metrics["runwarden_log_bytes_truncated_total"] == 0)
        }
    }

    @Test func badChunksAreRefusedAndChangeNothing() async throws {
        try await withApp({ $0.maxBodyBytes = 1024 }) { client in
            let run = try await client.createRun(runBody(tasks: "[\(taskJSON("a")), \(taskJSON("b"))]"))
            let taskID = try await client.claimTaskID()
            let other = try #require(run["tasks"]?.asArray?.compactMap { $0["id"]?.asString }.first { $0 != taskID })
            try expectError(try await client.shipLog("task_unknown", "x", at: 0), .notFound, "task_not_found")
            try expectError(try await client.shipLog(other, "x", at: 0), .conflict, "task_not_claimed")
            try expectError(try await client.shipLog(taskID, Array("x".utf8), at: 0, runner: "host-b"), .conflict, "task_not_claimed")
            try expectError(try await client.shipLog(taskID, Array("x".utf8), at: 0, attempt: 2), .conflict, "task_not_claimed")
            try expectError(try await client.shipLog(taskID, [UInt8](repeating: 65, count: 2048), at: 0), .contentTooLarge, "payload_too_large")
            try expectError(
                try await client.execute(uri: "/v1/tasks/\(taskID)/logs?offset=0", method: .post, body: ByteBuffer(string: "x")),
                .unprocessableContent, "validation_failed")
            try expectError(
                try await client.execute(uri: "/v1/tasks/\(taskID)/logs?attempt=1&offset=-1", method: .post, body: ByteBuffer(string: "x")),
                .unprocessableContent, "validation_failed")
            try expectError(try await client.send(.get, "/v1/tasks/\(taskID)/logs?offset=x"), .unprocessableContent, "validation_failed")
            try expectError(try await client.send(.get, "/v1/tasks/task_unknown/logs"), .notFound, "task_not_found")
            let read = try await client.send(.get, "/v1/tasks/\(taskID)/logs")
            #expect(read.status == .ok && read.text.isEmpty && read.headers[.testLogNextOffset] == "0")
        }
    }

    @Test func aCappedLogKeepsItsHeadAndNewestBytesAndSaysWhatItDropped() async throws {
        try await withApp({ $0.logMaxBytes = 1024 }) { client in
            _ = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID()
            var sent: [UInt8] = []
            for index in 0..<10 {
                let piece = [UInt8](repeating: UInt8(65 + index), count: 300)
                #expect(try await client.shipLog(taskID, piece, at: sent.count).status == .ok)
                sent += piece
            }
            let head = try await client.send(.get, "/v1/tasks/\(taskID)/logs")
            #expect(head.text == String(decoding: sent.prefix(512), as: UTF8.self))
            #expect(head.headers[.testLogTruncated] == "1976")
            let tail = try await client.send(.get, "/v1/tasks/\(taskID)/logs?offset=\(head.headers[.testLogNextOffset] ?? "")")
            #expect(tail.headers[.testLogOffset] == "2488")
            #expect(tail.text == String(decoding: sent.suffix(512), as: UTF8.self))

            let download = try await client.send(.get, "/v1/tasks/\(taskID)/logs/download")
            #expect(download.headers[.contentType] == "application/octet-stream")
            #expect(download.headers[.contentDisposition]?.contains("attachment") == true)
            let text = download.text
            #expect(text.hasPrefix(String(decoding: sent.prefix(512), as: UTF8.self)))
            #expect(text.hasSuffix(String(decoding: sent.suffix(512), as: UTF8.self)))
            #expect(text.contains("1976 bytes dropped"))
        }
    }

    @Test func textRoutesReplaceBytesThatAreNotUTF8AndTheDownloadKeepsThem() async throws {
        try await withApp { client in
            _ = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID()
            _ = try await client.shipLog(taskID, [0xFF, 0x41, 0xC3], at: 0)  // a bad byte, "A", half of "é"
            let partial = try await client.send(.get, "/v1/tasks/\(taskID)/logs")
            #expect(partial.text == "\u{FFFD}A", "the cut character waits for its second byte")
            #expect(partial.headers[.testLogNextOffset] == "2")
            // A long-poll does not answer the cut character alone: it waits for the rest.
            async let waited = client.send(.get, "/v1/tasks/\(taskID)/logs?offset=2&wait=10")
            try await waitUntilParked(client)
            _ = try await client.shipLog(taskID, [0xA9, 0x0A], at: 3)
            #expect(try await waited.text == "é\n")
            let whole = try await client.send(.get, "/v1/tasks/\(taskID)/logs?offset=2")
            #expect(whole.text == "é\n")
            let download = try await client.send(.get, "/v1/tasks/\(taskID)/logs/download")
            #expect(Array(download.body.readableBytesView) == [0xFF, 0x41, 0xC3, 0xA9, 0x0A])
            // The headers describe the whole answer: it starts at 0 and ends at the 5th byte.
            #expect(download.headers[.logOffset] == "0" && download.headers[.logNextOffset] == "5")
        }
    }

    @Test func aLongPollWakesWhenOutputArrives() async throws {
        try await withApp { client in
            _ = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID()
            async let waited = client.send(.get, "/v1/tasks/\(taskID)/logs?wait=10")
            try await waitUntilParked(client)
            let sentAt = ContinuousClock.now
            _ = try await client.shipLog(taskID, "hello\n", at: 0)
            let answer = try await waited
            #expect(answer.text == "hello\n")
            #expect(seconds(since: sentAt) < 2, "the long-poll answered \(seconds(since: sentAt)) s after the chunk")
        }
    }

    @Test func theStreamSendsEveryChunkOnceAndClosesAfterTheLastByte() async throws {
        try await withLiveApp { client, port in
            _ = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID()
            _ = try await client.shipLog(taskID, "one\n", at: 0)
            var stream = try await SSEStream.open(port: port, path: "/v1/tasks/\(taskID)/logs/stream")
            defer { stream.close() }
            let first = try await stream.frames(1)
            #expect(first.map(\.id) == ["4"])
            #expect(first.first?.event == "log")
            #expect(first.first?.data == #"{"attempt":1,"offset":0,"text":"one\n"}"#)
            _ = try await client.shipLog(taskID, "two\n", at: 4, final: true)
            let rest = try await stream.remainingFrames()
            #expect(rest.map(\.id) == ["8"])
            #expect(rest.first?.data == #"{"attempt":1,"offset":4,"text":"two\n"}"#)
            #expect(stream.ended, "the stream closes after the last byte")

            var resumed = try await SSEStream.open(
                port: port, path: "/v1/tasks/\(taskID)/logs/stream", headers: [("Last-Event-ID", "4")])
            defer { resumed.close() }
            #expect(try await resumed.remainingFrames().map(\.id) == ["8"])
        }
    }
}
