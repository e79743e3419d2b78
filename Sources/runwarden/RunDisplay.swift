import Foundation
import RunwardenClient
import RunwardenCore

/// Plain-text renderings of runs for the terminal. Every string from the server goes through
/// `shown` (control characters escaped) and every number through saturating arithmetic: what
/// a server answers must neither drive the terminal nor crash the CLI.
enum RunDisplay {
    static func exitCode(for status: RunStatus) -> Int32 {
        switch status {
        case .succeeded: 0
        case .failed: 1
        case .canceled: 2
        case .timedOut: 3
        case .queued, .running, .canceling: 4
        }
    }

    static func summary(_ run: RunSnapshot) -> String {
        var lines = ["\(shown(run.id))  \(shown(run.workflow))  \(shown(run.status.rawValue.uppercased()))  (version \(run.version))"]
        var times = "created \(shown(run.createdAt))"
        if let started = run.startedAt { times += "  started \(shown(started))" }
        if let duration = run.durationMs { times += "  took \(formatDuration(ms: duration))" }
        lines.append(times)
        lines.append("progress: \(progressCounts(run))")
        if let blocked = run.blockedBy { lines.append(concurrencyWait(blocked)) }
        if let error = run.error { lines.append("error: \(shown(error.code)): \(firstLine(error.message))") }
        let header = ["TASK", "STATUS", "ATTEMPT", "RUNNER", "EXIT", "ERROR"]
        let rows = (run.tasks ?? []).map { task in
            [
                shown(task.name), shown(task.status.rawValue), String(task.attempt), task.runner.map(shown) ?? "-",
                task.exitCode.map(String.init) ?? "-", task.error.map { "\(shown($0.code)): \(firstLine($0.message))" } ?? "",
            ]
        }
        lines.append("")
        lines.append(table([header] + rows))
        return lines.joined(separator: "\n")
    }

    /// A run waiting for a slot of its concurrency key (SPEC §10); a few holders named at most.
    static func concurrencyWait(_ blocked: RunBlockedBy) -> String {
        let shownHolders = blocked.heldBy.prefix(5).map(shown).joined(separator: ", ")
        let more = blocked.heldBy.count > 5 ? " and \(blocked.heldBy.count - 5) more" : ""
        return "waits for a \(shown(blocked.concurrency)) slot, held by \(shownHolders)\(more)"
    }

    static func progressCounts(_ run: RunSnapshot) -> String {
        let progress = run.progress
        let counts: [(String, Int)] = [
            ("succeeded", progress.succeeded), ("failed", progress.failed), ("running", progress.running),
            ("dispatched", progress.dispatched), ("queued", progress.queued), ("pending", progress.pending),
            ("canceling", progress.canceling), ("canceled", progress.canceled), ("timed out", progress.timedOut),
            ("skipped", progress.skipped),
        ]
        let done = ServerValue.sum([progress.succeeded, progress.failed, progress.canceled, progress.timedOut, progress.skipped])
        let parts = counts.filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }.joined(separator: " · ")
        return "\(done)/\(progress.total) tasks finished (\(progress.percent)%)  \(parts)"
    }

    /// One line per change, for logs and pipes.
    static func progressLine(_ run: RunSnapshot) -> String {
        "\(shown(run.status.rawValue)) \(run.progress.percent)% — \(progressCounts(run))"
    }

    /// A bar redrawn in place on a terminal.
    static func progressBar(_ run: RunSnapshot) -> String {
        let width = 30
        let filled = ServerValue.clamp(run.progress.percent, 0...100) * width / 100
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        return "\r\u{1B}[2K[\(bar)] \(run.progress.percent)%  \(shown(run.status.rawValue))  \(progressCounts(run))"
    }

    static func runTable(_ runs: [RunSnapshot]) -> String {
        let rows = runs.map { run in
            [
                shown(run.id), shown(run.workflow), shown(run.status.rawValue), "\(run.progress.percent)%", shown(run.createdAt),
                run.durationMs.map { formatDuration(ms: $0) } ?? "-",
            ]
        }
        return table([["RUN", "WORKFLOW", "STATUS", "DONE", "CREATED", "DURATION"]] + rows)
    }

    static func eventLine(_ event: RunEvent) -> String {
        var line = "\(event.seq)\t\(shown(event.timestamp))  \(shown(event.type))"
        if let previous = event.previousStatus { line += " (from \(shown(previous)))" }
        if let task = event.taskID { line += "  \(shown(task))" }
        if let attempt = event.attempt, attempt > 1 { line += " attempt \(attempt)" }
        if let error = event.error { line += "  \(shown(error.code)): \(firstLine(error.message))" }
        return line
    }

    static func table(_ rows: [[String]]) -> String {
        guard let columns = rows.map(\.count).max() else { return "" }
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func formatDuration(ms: Int64) -> String {
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return String(format: "%.1fs", Double(ms) / 1000) }
        return "\(ms / 60_000)m\(ms % 60_000 / 1000)s"
    }

    /// The first line of a (server's) message, escaped.
    static func firstLine(_ text: String) -> String {
        shown(String(text.split(separator: "\n", maxSplits: 1).first ?? ""))
    }

    static func shown(_ text: String) -> String { TerminalText.escaped(text) }
}
