import Foundation
import Testing
import RunwardenCore

@Suite("Timestamps")
struct TimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1_767_225_600_000, "2026-01-01T00:00:00.000Z"),
        (1_767_225_600_001, "2026-01-01T00:00:00.001Z"),
        (1_767_225_600_999, "2026-01-01T00:00:00.999Z"),
        (1_767_225_661_250, "2026-01-01T00:01:01.250Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
    ])
    func aTimestampRendersAsISO8601UTCWithMilliseconds(milliseconds: Int64, text: String) {
        #expect(Timestamp(milliseconds: milliseconds).iso8601 == text)
        #expect(Timestamp(iso8601: text) == Timestamp(milliseconds: milliseconds))
    }

    @Test func everyMillisecondOfASecondRoundTrips() {
        var broken: [Int64] = []
        for offset in Int64(0)..<1_000 {
            let timestamp = t0.adding(milliseconds: 86_400_000 * 123 + offset)
            if Timestamp(iso8601: timestamp.iso8601) != timestamp { broken.append(offset) }
        }
        #expect(broken.isEmpty, "milliseconds that do not round-trip: \(broken.prefix(10))")
    }

    @Test(arguments: [
        ("2026-01-01T00:00:00Z", Int64(0)),
        ("2026-01-01T00:00:00.5Z", 500),
        ("2026-01-01T00:00:00.123456Z", 123),
        ("2026-01-01T00:00:00.1239Z", 123),
        ("2026-01-01T02:00:00.250+02:00", 250),
        ("2025-12-31T19:00:00.007-05:00", 7),
        ("2026-01-01t00:00:00.042z", 42),
    ])
    func parsingAcceptsRFC3339VariantsAndTruncatesToTheMillisecond(text: String, offset: Int64) {
        #expect(Timestamp(iso8601: text) == t0.adding(milliseconds: offset))
    }

    @Test(arguments: ["", "yesterday", "2026-01-01", "2026-01-01 00:00:00Z", "2026-13-01T00:00:00Z", "1767225600000"])
    func parsingRejectsWhatIsNotATimestamp(_ text: String) {
        #expect(Timestamp(iso8601: text) == nil)
    }

    @Test func aDateIsTruncatedToTheMillisecond() {
        let date = Date(timeIntervalSince1970: 1_767_225_600.123_9)
        #expect(Timestamp(date) == t0.adding(milliseconds: 123))
        #expect(Timestamp(milliseconds: 1_234).date == Date(timeIntervalSince1970: 1.234))
    }

    @Test func timestampsOrderAndAddUp() {
        #expect(t0 < t0.adding(milliseconds: 1))
        #expect(t0.adding(seconds: 2) == t0.adding(milliseconds: 2_000))
        #expect(t0.adding(seconds: -1) < t0)
    }

    @Test func aTimestampEncodesAsItsMilliseconds() throws {
        let data = try JSONEncoder().encode(t0)
        #expect(try JSONDecoder().decode(Timestamp.self, from: data) == t0)
    }
}
