import Foundation
import RunwardenCore

/// retention: whether a database with `--retention R` stops growing with its events. A fresh
/// server with `--retention`, one-task lifecycles at c=8 for `periods` × R in slices of 5 s; the
/// database (file, -wal, -shm) is weighed after each slice. Recorded: its size after the first
/// period (when compaction starts to keep pace) and the largest after that; target ≤ 2×.
/// Finished runs keep their snapshot, so the database still grows by their run and task rows.
enum RetentionWorkload {
    static let concurrency = 8
    static let slice: Duration = .seconds(5)

    static func run(_ client: BenchClient, server: ServerProcess, retentionSeconds: Int, periods: Int) async throws -> JSONValue {
        let total = Duration.seconds(retentionSeconds * periods)
        let started = ContinuousClock.now
        var samples: [(seconds: Double, bytes: Int, runs: Int)] = []
        var runs = 0
        while ContinuousClock.now - started < total {
            let (level, _) = await LifecycleWorkload.level(
                client, concurrency: concurrency, duration: slice, maxIterations: 100_000, keepIDs: 0, serverPID: server.pid)
            runs += Int(level["ok"]?.doubleValue ?? 0)
            let seconds = Double((ContinuousClock.now - started).components.seconds)
            samples.append((seconds, server.databaseBytes ?? 0, runs))
            say("  retention \(retentionSeconds) s: t=\(Int(seconds)) s, \(runs) runs, database \(fmt(Double(samples.last!.bytes) / 1_048_576, 2)) MiB")
        }
        let afterFirst = samples.first { $0.seconds >= Double(retentionSeconds) } ?? samples.last
        let largestLater = samples.filter { $0.seconds > (afterFirst?.seconds ?? 0) }.map(\.bytes).max()
        var ratio: Double?
        if let largestLater, let afterFirst, afterFirst.bytes > 0 { ratio = Double(largestLater) / Double(afterFirst.bytes) }
        say("  retention: \(fmt(ratio, 2))× the size after one period (target ≤ 2)")
        return .object([
            .init("retention_s", .int(Int64(retentionSeconds))),
            .init("runs", .int(Int64(runs))),
            .init("database_mb_after_one_period", number(afterFirst.map { Double($0.bytes) / 1_048_576 })),
            .init("database_mb_largest_later", number(largestLater.map { Double($0) / 1_048_576 })),
            .init("ratio", number(ratio)),
            .init(
                "samples",
                .array(samples.map { .object([.init("s", number($0.seconds)), .init("bytes", .int(Int64($0.bytes))), .init("runs", .int(Int64($0.runs)))]) })),
        ])
    }
}
