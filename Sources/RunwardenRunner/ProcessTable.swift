import Foundation

/// What Linux's /proc says about processes — enough to tell whether a process group recorded
/// by an earlier runner is still the same one, and not a stranger that got the same number.
/// Elsewhere (no /proc) every lookup answers nothing.
enum ProcessTable {
    struct Entry: Sendable, Equatable {
        var pid: pid_t
        var group: pid_t
        var session: pid_t
        /// Clock ticks after boot when the process started (/proc/PID/stat field 22): with the
        /// boot id, it tells one process from a later one that reuses its PID.
        var startTime: UInt64
    }

    static func entry(_ pid: pid_t) -> Entry? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        return parseStat(String(decoding: data, as: UTF8.self), pid: pid)
    }

    /// Every process whose group is `group`.
    static func members(ofGroup group: pid_t) -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { Int32($0) }.compactMap(entry).filter { $0.group == group }
    }

    /// This boot's id: start times only compare within one boot.
    static var bootID: String? {
        guard let data = FileManager.default.contents(atPath: "/proc/sys/kernel/random/boot_id") else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The command name (field 2) is in parentheses and may itself hold spaces and parentheses,
    /// so the numbered fields are counted from after the last `)`: there field 3 is the first.
    static func parseStat(_ text: String, pid: pid_t) -> Entry? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Substring? { fields.indices.contains(number - 3) ? fields[number - 3] : nil }
        guard let group = field(5).flatMap({ pid_t($0) }), let session = field(6).flatMap({ pid_t($0) }),
            let start = field(22).flatMap({ UInt64($0) })
        else { return nil }
        return Entry(pid: pid, group: group, session: session, startTime: start)
    }
}
