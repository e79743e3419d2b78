import ServiceLifecycle
import Synchronization

/// Set once the store's schema is in place. Background services (reaper, webhook dispatcher)
/// start alongside the HTTP server, but a PostgreSQL schema is migrated just before it listens;
/// they wait for this instead of failing against tables that do not exist yet.
///
/// Waiters are continuations resumed by `markReady()` (no polling: a service starts the moment
/// the schema is there), or with false by their task's cancellation or graceful shutdown.
public final class SchemaReady: Sendable {
    private enum Waiter {
        /// Registered; the continuation is nil until `wait` has suspended.
        case waiting(CheckedContinuation<Bool, Never>?)
        /// Cancelled or shut down before `wait` suspended: it returns false when it gets there.
        case resigned
    }

    private struct State {
        var ready: Bool
        var nextID = 0
        var waiters: [Int: Waiter] = [:]
    }

    private let state: Mutex<State>

    public init(ready: Bool) { state = Mutex(State(ready: ready)) }

    /// Waiters suspended now (for tests).
    var suspendedCount: Int {
        state.withLock { state in
            state.waiters.values.count { if case .waiting(.some) = $0 { true } else { false } }
        }
    }

    public func markReady() {
        let waiting = state.withLock { state in
            state.ready = true
            // Those not yet suspended find their entry gone and return true.
            defer { state.waiters = [:] }
            return state.waiters.values.compactMap { waiter -> CheckedContinuation<Bool, Never>? in
                if case .waiting(let continuation) = waiter { continuation } else { nil }
            }
        }
        for continuation in waiting { continuation.resume(returning: true) }
    }

    /// Returns true once ready; false when the task is cancelled or the service group shuts
    /// down first.
    public func wait() async -> Bool {
        let id: Int? = state.withLock { state in
            if state.ready { return nil }
            defer { state.nextID += 1 }
            state.waiters[state.nextID] = .waiting(nil)
            return state.nextID
        }
        guard let id else { return true }
        return await withTaskCancellationOrGracefulShutdownHandler {
            await withCheckedContinuation { continuation in
                let early: Bool? = state.withLock { state in
                    switch state.waiters[id] {
                    case .waiting: state.waiters[id] = .waiting(continuation); return nil
                    case .resigned: state.waiters[id] = nil; return false
                    case nil: return true  // markReady came first
                    }
                }
                if let early { continuation.resume(returning: early) }
            }
        } onCancelOrGracefulShutdown: {
            self.resign(id)
        }
    }

    /// Ends one waiter with false, now if it is suspended, else when it suspends.
    private func resign(_ id: Int) {
        let continuation: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard case .waiting(let continuation) = state.waiters[id] else { return nil }
            if let continuation {
                state.waiters[id] = nil
                return continuation
            }
            state.waiters[id] = .resigned
            return nil
        }
        continuation?.resume(returning: false)
    }
}
