import Synchronization

/// Ends a long-poll's waiting from outside its task: the connection's `DisconnectWatch` fires
/// it when the client goes away, and `ChangeHub.wait` — which finds it as a task-local — wakes
/// at once. Cheaper than cancelling a task made for the purpose (a task per parked long-poll).
final class WaitInterrupt: Sendable {
    /// The interrupt of the long-poll the current task serves, if any.
    @TaskLocal static var current: WaitInterrupt?

    private struct State {
        var isFired = false
        var onFire: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    var isFired: Bool { state.withLock { $0.isFired } }

    /// Runs `handler` when fired (at once if it already was); nil removes the handler.
    func onFire(_ handler: (@Sendable () -> Void)?) {
        let runNow = state.withLock { state -> Bool in
            guard !state.isFired else { return true }
            state.onFire = handler
            return false
        }
        if runNow { handler?() }
    }

    func fire() {
        let handler = state.withLock { state -> (@Sendable () -> Void)? in
            guard !state.isFired else { return nil }
            state.isFired = true
            defer { state.onFire = nil }
            return state.onFire
        }
        handler?()
    }
}
