/// An attempt that ran out of time (the whole exchange, not only the wait for the head).
struct AttemptTimedOut: Error, CustomStringConvertible {
    var description: String { "timed out" }
}

/// Runs `operation`, cancelling it and throwing `AttemptTimedOut` once `timeout` has passed.
/// `operation` must end when cancelled (AsyncHTTPClient's requests and bodies do).
func withAttemptTimeout<Value: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    try await withThrowingTaskGroup(of: Value.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw AttemptTimedOut()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw AttemptTimedOut() }
        return first
    }
}
