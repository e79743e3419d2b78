import Foundation
import RunwardenCore
import Testing

/// `Retry-After` comes from whoever answers a webhook: it must never trap and never ask for
/// more than a day, whatever it says.
@Suite("Retry-After from receivers")
struct RetryAfterTests {
    static let now = Timestamp(milliseconds: 1_800_000_000_000)  // 2027-01-15T08:00:00Z
    static let day = RetryAfter.maximumMilliseconds

    @Test(
        "Seconds and HTTP dates become a wait of 0 s … 24 h",
        arguments: [
            ("120", Int64(120_000)), ("0", 0), ("  7 ", 7_000), ("1.5", 1_500), ("+3", 3_000),
            ("-5", 0), ("-99999999999999999999999", 0),
            ("86400", day), ("86401", day), ("99999999999999999", day),
            (String(repeating: "9", count: 400), day), (String(repeating: "9", count: 100_000), day),
            ("Fri, 15 Jan 2027 08:00:30 GMT", 30_000), ("Friday, 15-Jan-27 08:01:00 GMT", 60_000),
            ("Fri Jan 15 08:00:05 2027", 5_000), ("Fri Jan  15 08:00:05 2027", 5_000),
            ("Fri, 31 Dec 9999 23:59:59 GMT", day), ("Fri, 31 Dec 99999999999999999999 23:59:59 GMT", day),
            ("Mon, 01 Jan 1990 00:00:00 GMT", 0), ("Mon, 01 Jan 0000 00:00:00 GMT", 0),
        ])
    func clamped(value: String, milliseconds: Int64) {
        #expect(RetryAfter.milliseconds(value, now: Self.now) == milliseconds)
    }

    @Test(
        "Anything else is ignored, so the normal schedule applies",
        arguments: [
            "", "soon", "inf", "nan", "-inf", "1e9", "0x10", "1.", ".5", "5 s", "--5", "1,000", "١٢٣",
            "Fri, 32 Jan 2027 08:00:00 GMT", "Fri, 29 Feb 2027 08:00:00 GMT", "Fri, 15 Jan 2027 24:00:00 GMT",
            "Fri, 15 Foo 2027 08:00:00 GMT", "Fri, 15 Jan 2027 08:00 GMT", "Fri, 15 Jan 2027", "08:00:00",
            "Fri, 15 Jan 2027 08:00:00 GMT garbage", "Fri, 15 Jan Jan 2027 08:00:00 GMT", "Fri, 999 Jan 2027 08:00:00 GMT",
        ])
    func ignored(value: String) {
        #expect(RetryAfter.milliseconds(value, now: Self.now) == nil)
    }

    @Test("The HTTP date formats agree with Foundation where Foundation can read them")
    func datesAgreeWithFoundation() throws {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            // 1900 … 2400, leap days and centuries included.
            let seconds = Int64.random(in: -2_208_988_800...13_569_465_600, using: &generator)
            let text = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            #expect(HTTPDate.milliseconds(text) == seconds * 1000, "\(text)")
        }
    }

    /// Random text, and random mutations of valid values: never a trap, never outside 0 … 24 h.
    @Test("Fuzzed values never trap and never leave 0 s … 24 h", arguments: 0..<8)
    func fuzzed(round: Int) {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789 +-.,:abcdefghijklmnopqrstuvwxyzJFMASOND GMT\t\u{0}é9")
        let seeds = [
            "Fri, 15 Jan 2027 08:00:30 GMT", "Friday, 15-Jan-27 08:01:00 GMT", "Fri Jan 15 08:00:05 2027", "120",
            "99999999999999999", "-5",
        ]
        for _ in 0..<5_000 {
            var text: String
            if Bool.random(using: &generator) {
                let length = Int.random(in: 0...64, using: &generator)
                text = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            } else {
                var characters = Array(seeds.randomElement(using: &generator)!)
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let position = Int.random(in: 0...characters.count, using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: characters.insert(alphabet.randomElement(using: &generator)!, at: position)
                    case 1 where position < characters.count: characters.remove(at: position)
                    default: characters.insert(contentsOf: String(repeating: "9", count: Int.random(in: 1...30, using: &generator)), at: position)
                    }
                }
                text = String(characters)
            }
            let now = Timestamp(milliseconds: Int64.random(in: Int64.min...Int64.max, using: &generator))
            if let wait = RetryAfter.milliseconds(text, now: now) {
                #expect((0...Self.day).contains(wait), "\(text.debugDescription) → \(wait)")
            }
        }
    }

    @Test("A retry schedule rejects delays that are not positive or longer than a week")
    func scheduleBounds() {
        #expect(RetrySchedule.parse("5s,168h") == [5_000, RetrySchedule.longestDelayMilliseconds])
        #expect(RetrySchedule.parse("5s,169h") == nil)
        #expect(RetrySchedule.parse("2562047788015h") == nil)
        #expect(RetrySchedule.parse("9999999999999999999h") == nil)
        #expect(RetrySchedule.parse("5s,0s") == nil)
    }

    @Test("Jitter stays within ±10 % and never traps, whatever the delay", arguments: [Int64.max, Int64.min, -1, 0, 1, 10, 5_000])
    func jitter(delay: Int64) {
        for _ in 0..<200 {
            let jittered = RetrySchedule.jittered(delay)
            let spread = max(delay, 0) / 10
            #expect(jittered >= delay.subtractingReportingOverflow(spread).partialValue)
            #expect(delay > Int64.max - spread || jittered <= delay + spread)
        }
    }

    @Test("Saturating timestamp arithmetic stops at the ends of the range")
    func saturating() {
        #expect(Timestamp(milliseconds: .max - 1).adding(saturatingMilliseconds: 10).milliseconds == .max)
        #expect(Timestamp(milliseconds: .min + 1).adding(saturatingMilliseconds: -10).milliseconds == .min)
        #expect(Self.now.adding(saturatingMilliseconds: 5).milliseconds == Self.now.milliseconds + 5)
        #expect(Duration.seconds(Int64.max).saturatingMilliseconds == .max)
        #expect(Duration.milliseconds(1_500).saturatingMilliseconds == 1_500)
    }
}
