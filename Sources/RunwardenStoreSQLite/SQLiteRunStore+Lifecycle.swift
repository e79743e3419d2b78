import ServiceLifecycle

/// The store as a service of the server's `ServiceGroup`: listed first, it stops last — after
/// the HTTP server and the background services have stopped sending writes — and its stop waits
/// for every queued write to commit and be answered. A store used without a group (tests,
/// tools) commits all the same; `close()` is then its owner's to call, or never.
extension SQLiteRunStore: Service {
    public func run() async {
        // Cancellation (another service failed) stops the store the same way: queued writes
        // still commit, since the commit loop is the committer's own task, not this one.
        try? await gracefulShutdown()
        await close()
    }

    /// Refuses new writes (they fail with `StoreError.unavailable`), then returns once every
    /// write queued before has committed and been answered.
    public func close() async {
        await committer.close()
    }
}
