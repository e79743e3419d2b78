import Logging
import RunwardenCore
import ServiceLifecycle

/// Compacts finished runs once they are older than `--retention` (SPEC §7), and removes runner
/// events as old; removes task logs older than `--log-retention` (SPEC §9) on their own clock: a
/// bounded batch per transaction, so writers wait at most one batch, and every `interval` again.
public struct Retention: Service {
    let service: RunService
    let runs: Duration?
    let logs: Duration?
    let interval: Duration
    /// Runs per transaction.
    static let batchSize = 100
    /// Batches per pass: a large backlog (retention just turned on) is worked off over passes.
    static let batchesPerPass = 50

    public init(service: RunService, runs: Duration?, logs: Duration?) {
        self.service = service
        self.runs = runs
        self.logs = logs
        // A tenth of the shorter period, between 1 s and a minute: a run is compacted, a log
        // removed, soon after its time.
        let shorter = [runs, logs].compactMap { $0 }.min() ?? .seconds(600)
        interval = max(.seconds(1), min(.seconds(60), shorter / 10))
    }

    public func run() async throws {
        guard await service.schema.wait() else { return }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if let runs {
                await pass("compacted runs") { try await service.compact(olderThan: runs, limit: $0) }
                // Runner events belong to no run: they go when they are as old.
                await pass("removed runner events") { try await service.compactRunnerEvents(olderThan: runs, limit: $0) }
            }
            if let logs {
                await pass("removed task logs") { try await service.expireLogs(olderThan: logs, limit: $0) }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Batches of `batch` until one comes back short (or `batchesPerPass`).
    private func pass(_ what: String, _ batch: (Int) async throws -> Int) async {
        do {
            var done = 0
            for _ in 0..<Self.batchesPerPass {
                let count = try await batch(Self.batchSize)
                done += count
                if count < Self.batchSize || Task.isShuttingDownGracefully { break }
                await Task.yield()
            }
            if done > 0 { service.logger.info("retention \(what)", metadata: ["count": "\(done)"]) }
        } catch {
            service.logger.error("retention pass failed", metadata: ["what": "\(what)", "error": "\(error)"])
        }
    }
}
