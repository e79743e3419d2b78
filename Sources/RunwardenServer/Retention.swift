import Logging
import RunwardenCore
import ServiceLifecycle

/// Compacts finished runs once they are older than `--retention` (SPEC §7), and removes runner
/// events as old: a bounded batch per transaction, so writers wait at most one batch, and every
/// `interval` again.
public struct Retention: Service {
    let service: RunService
    let retention: Duration
    let interval: Duration
    /// Runs per transaction.
    static let batchSize = 100
    /// Batches per pass: a large backlog (retention just turned on) is worked off over passes.
    static let batchesPerPass = 50

    public init(service: RunService, retention: Duration) {
        self.service = service
        self.retention = retention
        // A tenth of the period, between 1 s and a minute: a run is compacted soon after its time.
        interval = max(.seconds(1), min(.seconds(60), retention / 10))
    }

    public func run() async throws {
        guard await service.schema.wait() else { return }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                var compacted = 0
                for _ in 0..<Self.batchesPerPass {
                    let batch = try await service.compact(olderThan: retention, limit: Self.batchSize)
                    compacted += batch
                    if batch < Self.batchSize || Task.isShuttingDownGracefully { break }
                    await Task.yield()
                }
                if compacted > 0 { service.logger.info("retention compacted runs", metadata: ["runs": "\(compacted)"]) }
                // Runner events belong to no run: they go when they are as old (a batch a pass).
                let runnerEvents = try await service.compactRunnerEvents(olderThan: retention, limit: Self.batchSize * 10)
                if runnerEvents > 0 { service.logger.info("retention removed runner events", metadata: ["events": "\(runnerEvents)"]) }
            } catch {
                service.logger.error("retention pass failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
