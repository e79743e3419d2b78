/// Text that came from a server, made safe to print (SPEC §6): a workflow name, task name or
/// error message must not move the cursor, retitle the window, clear the screen, hide what
/// follows or reorder it. Control characters (C0, DEL, C1 — U+009B is a CSI on some
/// terminals) and the bidirectional overrides become visible escapes: ESC is `\x1b`,
/// U+202E is `\u{202e}`.
enum TerminalText {
    /// One line's worth: newlines and tabs are escaped too, so a cell stays in its row.
    static func escaped(_ text: String) -> String { escape(text, keeping: []) }

    /// A block (an error message with a stderr tail): its newlines stay.
    static func escapedBlock(_ text: String) -> String { escape(text, keeping: ["\n"]) }

    /// A line of a task's output: its tabs stay, and its colour codes (SGR: `ESC [ … m`) are
    /// dropped rather than shown or obeyed; every other control character is escaped.
    static func logLine(_ text: String) -> String { escape(withoutColours(text), keeping: ["\t"]) }

    /// `text` without its SGR sequences (`ESC [` digits, `;` or `:`, then `m`).
    static func withoutColours(_ text: String) -> String {
        guard text.unicodeScalars.contains("\u{1B}") else { return text }
        var out = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            if scalars[index] == "\u{1B}", index + 1 < scalars.count, scalars[index + 1] == "[" {
                var end = index + 2
                while end < scalars.count, ("0"..."9").contains(scalars[end]) || scalars[end] == ";" || scalars[end] == ":" { end += 1 }
                if end < scalars.count, scalars[end] == "m" {
                    index = end + 1
                    continue
                }
            }
            out.append(scalars[index])
            index += 1
        }
        return String(out)
    }

    /// JSON text as the server sent it, with the characters JSON encoders leave raw inside
    /// strings (DEL, C1, bidirectional controls; also any stray C0) written as `\u00XX` — the
    /// same string to a JSON reader. Newlines, tabs and returns outside strings are layout.
    static func escapedJSON(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if needsEscape(scalar), !["\n", "\r", "\t"].contains(scalar) {
                out.append(contentsOf: "\\u\(hex(scalar.value, digits: 4))".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    private static func escape(_ text: String, keeping kept: Set<Unicode.Scalar>) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if needsEscape(scalar), !kept.contains(scalar) {
                let shown =
                    switch scalar {
                    case "\n": "\\n"
                    case "\r": "\\r"
                    case "\t": "\\t"
                    default: scalar.value < 0x100 ? "\\x\(hex(scalar.value, digits: 2))" : "\\u{\(hex(scalar.value, digits: 4))}"
                    }
                out.append(contentsOf: shown.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F: true  // C0, DEL, C1
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional marks and overrides
        default: false
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
