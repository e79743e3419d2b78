/// Why a running task is being stopped.
enum StopReason: Sendable, Equatable {
    /// The server asked (a cancel, or the run failed or timed out).
    case canceled
    /// The task ran past its `timeout_s`.
    case timedOut
    /// The runner itself is shutting down.
    case shutdown
    /// The runner could not heartbeat for a whole lease: the server has given the task away.
    case leaseLost
}

/// A one-shot signal a task's execution waits on; the heartbeat loop fires it.
actor StopSignal {
    private(set) var reason: StopReason?
    private var waiters: [CheckedContinuation<StopReason?, Never>] = []

    func fire(_ reason: StopReason) {
        guard self.reason == nil else { return }
        self.reason = reason
        for waiter in waiters { waiter.resume(returning: reason) }
        waiters.removeAll()
    }

    /// The reason once fired; nil if the waiting task is cancelled first.
    func wait() async -> StopReason? {
        if let reason { return reason }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if let reason {
                    continuation.resume(returning: reason)
                } else if Task.isCancelled {
                    continuation.resume(returning: nil)
                } else {
                    waiters.append(continuation)
                }
            }
        } onCancel: {
            Task { await self.releaseWaiters() }
        }
    }

    private func releaseWaiters() {
        for waiter in waiters { waiter.resume(returning: nil) }
        waiters.removeAll()
    }
}
