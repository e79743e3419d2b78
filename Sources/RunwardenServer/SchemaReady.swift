import ServiceLifecycle
import Synchronization

/// Set once the store's schema is in place. Background services (reaper, webhook dispatcher)
/// start alongside the HTTP server, but a PostgreSQL schema is migrated just before it listens;
/// they wait for this instead of failing against tables that do not exist yet.
public final class SchemaReady: Sendable {
    private let ready: Atomic<Bool>

    public init(ready: Bool) { self.ready = Atomic(ready) }

    public func markReady() { ready.store(true, ordering: .releasing) }

    /// Returns true once ready; false when the service is shutting down first.
    public func wait() async -> Bool {
        while !ready.load(ordering: .acquiring) {
            if Task.isCancelled || Task.isShuttingDownGracefully { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
