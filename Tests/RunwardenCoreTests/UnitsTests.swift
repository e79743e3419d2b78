import Testing
import RunwardenCore

@Suite("Duration and size notation")
struct UnitsTests {
    @Test(arguments: [
        ("500ms", Int64(500)), ("5s", 5_000), ("2m", 120_000), ("1h", 3_600_000), ("30s", 30_000), ("1ms", 1),
        ("10h", 36_000_000), (" 5s ", 5_000),
    ])
    func aDurationIsReadInMilliseconds(text: String, milliseconds: Int64) {
        #expect(Units.milliseconds(text) == milliseconds)
    }

    @Test(arguments: [
        "", "5", "s", "ms", "0s", "-5s", "5x", "5 s", "1.5s", "5sec", "5S", "h1", "five s", "5ms5",
        "99999999999999999h", "9223372036854775807h", "9223372036854775807ms0",
    ])
    func aMalformedOrNonPositiveDurationIsNil(_ text: String) {
        #expect(Units.milliseconds(text) == nil)
    }

    @Test func theDefaultWebhookScheduleParses() {
        let schedule = "5s,5m,30m,2h,5h,10h,10h".split(separator: ",").map { Units.milliseconds(String($0)) }
        #expect(schedule == [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000])
    }

    @Test(arguments: [
        ("1MiB", 1_048_576), ("64KiB", 65_536), ("2GiB", 2_147_483_648), ("1024", 1_024), ("512B", 512),
        (" 1MiB ", 1_048_576),
    ])
    func aSizeIsReadInBytes(text: String, bytes: Int) {
        #expect(Units.bytes(text) == bytes)
    }

    @Test(arguments: ["", "MiB", "0", "0MiB", "-1MiB", "1.5MiB", "1MB", "1 MiB", "1mib", "lots", "99999999999999999999GiB", "9223372036854775807GiB"])
    func aMalformedOrNonPositiveSizeIsNil(_ text: String) {
        #expect(Units.bytes(text) == nil)
    }
}
