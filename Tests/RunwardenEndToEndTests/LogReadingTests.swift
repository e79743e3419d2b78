import Foundation
import NIOHTTP1
import Testing

@testable import RunwardenClient
@testable import runwarden

/// The pieces of `runwarden logs` below the process: what a log answer's headers may say, how
/// text becomes lines, and how a line reaches the terminal.
@Suite("Reading task logs")
struct LogReadingTests {
    private static func answer(_ headers: [(String, String)], _ body: String = "") -> RunwardenClient.Answer {
        RunwardenClient.Answer(status: 200, headers: HTTPHeaders(headers), body: Data(body.utf8))
    }

    private static func headers(offset: String = "10", next: String = "14", attempt: String = "2", complete: String = "false") -> [(String, String)] {
        [("Log-Offset", offset), ("Log-Next-Offset", next), ("Log-Attempt", attempt), ("Log-Complete", complete), ("Log-Truncated-Bytes", "3")]
    }

    @Test("A log answer is read with its offsets, attempt, completeness and dropped bytes")
    func aLogAnswerIsRead() throws {
        let page = try RunwardenClient.logPage(Self.answer(Self.headers(complete: "true"), "abcd"), asked: 7, attempt: 2)
        #expect(page == RunwardenClient.LogPage(attempt: 2, offset: 10, nextOffset: 14, complete: true, truncatedBytes: 3, text: "abcd"))
    }

    @Test(
        "A log answer whose headers cannot answer the read is an invalid response, not a loop",
        arguments: [
            headers(offset: "6"),  // starts before the offset asked for
            headers(next: "9"),  // ends before it starts
            headers(next: "-1"),
            headers(next: "99999999999999999999"),  // not an Int64
            headers(attempt: "3"),  // another attempt than asked for
            headers(attempt: "0"),
            headers(complete: "yes"),
            [("Log-Offset", "10"), ("Log-Next-Offset", "14")],
        ])
    func impossibleHeadersAreRefused(headers: [(String, String)]) {
        #expect(throws: ClientError.self) { try RunwardenClient.logPage(Self.answer(headers), asked: 7, attempt: 2) }
    }

    @Test("Text becomes lines at line breaks (CRLF too), an unfinished line waits, an endless one is cut")
    func linesAreSplit() {
        var lines = LineSplitter(longest: 8)
        #expect(lines.feed("one\r\ntw") == ["one"])
        #expect(lines.feed("o\n\nthr") == ["two", ""])
        #expect(lines.feed("ee\r") == [])
        #expect(lines.feed("\n") == ["three"])
        #expect(lines.feed("0123456789abcdefXY") == ["01234567", "89abcdef"])
        #expect(lines.flush() == "XY")
        #expect(lines.flush() == nil)
    }

    @Test("A printed line keeps its tabs, loses its colour codes, and shows every other control character escaped")
    func printedLinesAreSafe() {
        let line = LogFollower.Event.line(task: "build\u{1B}[2J", text: "\u{1B}[1;31merror\u{1B}[0m:\tx\u{1B}]0;title\u{07}\r\u{202E}")
        #expect(Logs.line(line, prefixed: true) == #"build\x1b[2J | error:"# + "\t" + #"x\x1b]0;title\x07\r\u{202e}"#)
        #expect(Logs.line(line, prefixed: false).hasPrefix("error:\t"))
        #expect(Logs.line(.dropped(task: "b", bytes: 1976), prefixed: false) == "[runwarden: 1976 bytes dropped here to keep the log within its cap]")
    }
}
