/// Reads the HTTP date formats a recipient must accept (RFC 9110 §5.6.7): IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`).
///
/// Written out rather than handed to a date formatter because the text comes from strangers:
/// every field is range-checked and the arithmetic is on small integers, so no year, however
/// many digits it has, can overflow on the way to milliseconds (Foundation parses such years
/// into a `Date` whose conversion to `Int64` traps).
public enum HTTPDate {
    /// Years past this are read as this: further ahead than any clamp cares about.
    static let latestYear: Int64 = 10_000

    /// Milliseconds since 1970 of `text` (always UTC), or nil when it is not an HTTP date.
    public static func milliseconds(_ text: String) -> Int64? {
        let tokens = text.split { $0 == " " || $0 == "," || $0 == "-" || $0 == "\t" }
        var time: (hour: Int64, minute: Int64, second: Int64)?
        var month: Int64?
        var numbersBeforeMonth: [Substring] = []
        var numbersAfterMonth: [Substring] = []
        for token in tokens {
            if token.contains(":") {
                guard time == nil, let parsed = clock(token) else { return nil }
                time = parsed
            } else if token.allSatisfy(\.isASCIIDigit) {
                if month == nil { numbersBeforeMonth.append(token) } else { numbersAfterMonth.append(token) }
            } else if let index = monthNames.firstIndex(of: token.lowercased()) {
                guard month == nil else { return nil }
                month = Int64(index + 1)
            } else if !ignoredWords.contains(token.lowercased()) {
                return nil
            }
        }
        guard let time, let month else { return nil }
        let dayText: Substring
        let yearText: Substring
        switch (numbersBeforeMonth.count, numbersAfterMonth.count) {
        case (1, 1): (dayText, yearText) = (numbersBeforeMonth[0], numbersAfterMonth[0])  // IMF-fixdate, RFC 850
        case (0, 2): (dayText, yearText) = (numbersAfterMonth[0], numbersAfterMonth[1])  // asctime
        default: return nil
        }
        guard dayText.count <= 2, let day = Int64(dayText), yearText.count >= 2 else { return nil }
        // Any number of digits is a year; past `latestYear` they all mean "too far ahead".
        var year = Int64(yearText).map { min($0, latestYear) } ?? latestYear
        if yearText.count == 2 { year += year < 70 ? 2000 : 1900 }  // RFC 850's two-digit years
        guard (1...daysIn(month: month, year: year)).contains(day) else { return nil }
        let days = daysSince1970(year: year, month: month, day: day)
        return ((days * 24 + time.hour) * 60 + time.minute) * 60_000 + time.second * 1000
    }

    private static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let ignoredWords: Set<String> = [
        "mon", "tue", "wed", "thu", "fri", "sat", "sun",
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "gmt", "utc", "ut", "z",
    ]

    /// `HH:MM:SS`, each part one or two digits and in range (a leap second allowed).
    private static func clock(_ token: Substring) -> (hour: Int64, minute: Int64, second: Int64)? {
        let parts = token.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ (1...2).contains($0.count) && $0.allSatisfy(\.isASCIIDigit) }),
            let hour = Int64(parts[0]), let minute = Int64(parts[1]), let second = Int64(parts[2]),
            hour < 24, minute < 60, second <= 60
        else { return nil }
        return (hour, minute, second)
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func daysSince1970(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
