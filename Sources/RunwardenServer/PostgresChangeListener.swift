import Logging
import RunwardenStorePostgres
import ServiceLifecycle

/// With several nodes on one PostgreSQL database, a change committed through node A must wake
/// the long-polls and streams waiting on node B: every commit sends a NOTIFY with its topics,
/// and this service turns each one into a wake-up of the local `ChangeHub`.
struct PostgresChangeListener: Service {
    let store: PostgresRunStore
    let hub: ChangeHub
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await store.listen { topic in
                if let parsed = ChangeHub.Topic(notification: topic) { await hub.notify([parsed]) }
            }
        }
    }
}

extension ChangeHub.Topic {
    /// The hub's topic for a store notification (`PostgresChangeTopic`).
    init?(notification: String) {
        switch PostgresChangeTopic(payload: notification) {
        case .run(let id): self = .run(id)
        case .events: self = .events
        case .claims: self = .claims
        case .deliveries: self = .deliveries
        case .log(let taskID): self = .log(taskID)
        case .runners: self = .runners
        case nil: return nil
        }
    }
}
