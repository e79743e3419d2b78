/// The names a task's `workspace` (SPEC §6) and a runner (SPEC §8) may have:
/// `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`. Each is one directory name on a runner as it stands — no
/// separator, no `.`/`..`, no case of two names sharing a directory — and safe to print, log or
/// put in a URL path.
public typealias WorkspaceName = PlainName
public typealias RunnerName = PlainName

public enum PlainName {
    public static let rule = "must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 128, isAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
