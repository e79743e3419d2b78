import Logging
import ServiceLifecycle

/// The background worker that keeps runs honest when runners vanish (SPEC §1): on start it
/// gives every claimed task one full lease, then every `interval` it records silent runners
/// `lost` or `offline` (SPEC §8), reaps lost leases and fires task and run timeouts — which
/// therefore fire even when no runner is left.
public struct Reaper: Service {
    let service: RunService
    let interval: Duration

    public init(service: RunService, interval: Duration) {
        self.service = service
        self.interval = interval
    }

    public func run() async throws {
        guard await service.schema.wait() else { return }
        // Renewal must happen before the first reaping pass, or tasks whose runners could not
        // heartbeat while the server was down would be reaped at once. Retried until the
        // database answers.
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let renewed = try await service.renewLeases()
                if renewed > 0 { service.logger.notice("renewed leases after start", metadata: ["tasks": "\(renewed)"]) }
                break
            } catch {
                service.logger.warning("could not renew leases at start yet", metadata: ["error": "\(error)"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            }
        }
        // Runners could not reach us while we were down either: none is recorded gone before
        // it has had a full lease to make contact again.
        let started = ContinuousClock.now
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await service.reap(runners: ContinuousClock.now - started >= .seconds(service.leaseSeconds))
            } catch {
                service.logger.error("reaper pass failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
