import Foundation

/// Parses the duration and size notations used by flags (SPEC §2): `500ms`, `5s`, `2m`, `1h`, `30d`,
/// and bytes with an optional `KiB`/`MiB`/`GiB` suffix.
public enum Units {
    /// Milliseconds, or nil when the text is not a positive duration.
    public static func milliseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            // "5ms" also ends in "s": only accept when what remains is a plain number.
            if let value = Int64(number), value > 0 {
                let (product, overflow) = value.multipliedReportingOverflow(by: factor)
                return overflow ? nil : product
            }
        }
        return nil
    }

    public static func bytes(_ text: String) -> Int? {
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1), ("", 1)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            if let value = Int(trimmed.dropLast(suffix.count)), value > 0 {
                let (product, overflow) = value.multipliedReportingOverflow(by: factor)
                return overflow ? nil : product
            }
        }
        return nil
    }
}
