import Foundation
import Testing
import RunwardenCore
import RunwardenTestSupport

/// The parsers that read text a client, a runner or a browser chooses — `Host` headers,
/// report timestamps, durations, sizes, workspace names — fed random and ugly strings: they
/// answer (nil or false) and never trap. Seeded, so a failure reproduces.
@Suite("Hostile text fuzz")
struct HostileTextFuzzTests {
    static let ugly = [
        "", " ", "\u{0}", "[", "]", "[]:", "[::1", "::1]", ":", "::::::::", "99999999999999999999999s", "-1s", "9223372036854775807ms",
        "9223372036854775807h", "1e308s", "0x10s", "١٢s", "+5s", "5 s", "5S", "9999999999GiB", "-0", "NaN", "inf",
        "99999-12-31T23:59:59Z", "-9999-01-01T00:00:00Z", "2026-13-45T25:61:61Z", "2026-01-01T00:00:00.9999999999999Z",
        "2026-01-01T00:00:00+99:99", String(repeating: "9", count: 10_000), String(repeating: "[", count: 5_000),
        "127.0.0.1\u{0}.evil", "localhost\r\nX-Injected: 1", "ｌｏｃａｌｈｏｓｔ", "xn--localhost", "LOCALHOST.:80",
    ]

    static func randomText(_ generator: inout some RandomNumberGenerator) -> String {
        let alphabet = Array("0123456789abcdefxyzTZ:.-+[]/sSmMhHiIBK \u{0}\u{7f}é١") + ["\u{202e}", "\u{1b}"]
        let length = Int.random(in: 0...40, using: &generator)
        return String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
    }

    @Test("every parser answers every string without trapping, and what it accepts is sane")
    func parsersSurviveHostileText() {
        var generator = SeededRandom(seed: 13)
        let inputs = Self.ugly + (0..<20_000).map { _ in Self.randomText(&generator) }
        for text in inputs {
            if let host = LoopbackName.hostOfHeader(text) {
                #expect(!host.isEmpty && host.utf8.count <= text.utf8.count)
            }
            _ = LoopbackName.matches(text)
            if WorkspaceName.isValid(text) {
                #expect(text.utf8.count <= 128 && !text.contains("/") && !text.hasPrefix("."))
            }
            if let milliseconds = Units.milliseconds(text) { #expect(milliseconds > 0) }
            if let bytes = Units.bytes(text) { #expect(bytes > 0) }
            if let timestamp = Timestamp(iso8601: text) {
                #expect(Timestamp(iso8601: timestamp.iso8601) == timestamp)
            }
        }
    }
}
