import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import RunwardenServer

/// Waiters are suspended continuations: `markReady` resumes them at once, cancellation and
/// graceful shutdown resume them with false, and none is left behind.
@Suite("Schema ready", .timeLimit(.minutes(1)))
struct SchemaReadyTests {
    @Test("a suspended waiter resumes with true on markReady, without a poll interval")
    func waiterResumesOnMarkReady() async throws {
        let schema = SchemaReady(ready: false)
        let waiter = Task { await schema.wait() }
        try await until { schema.suspendedCount == 1 }

        // No clock: a timing bound flakes on a loaded machine. The waiter was a suspended
        // continuation (counted above), and markReady itself took and resumed it.
        schema.markReady()
        #expect(schema.suspendedCount == 0)
        #expect(await waiter.value)
        #expect(await schema.wait(), "once ready, wait returns true at once")
    }

    @Test("a cancelled waiter resumes with false, whether cancelled before or while suspended")
    func cancellationResumesFalse() async throws {
        let schema = SchemaReady(ready: false)
        let suspended = Task { await schema.wait() }
        try await until { schema.suspendedCount == 1 }
        suspended.cancel()
        #expect(await suspended.value == false)

        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await schema.wait()
        }
        #expect(await early.value == false)
        #expect(schema.suspendedCount == 0)

        schema.markReady()  // nothing left to resume
        #expect(await schema.wait())
    }

    @Test("graceful shutdown of the service group resumes a waiting service with false")
    func gracefulShutdownResumesFalse() async throws {
        let schema = SchemaReady(ready: false)
        let service = Waiting(schema: schema)
        let group = ServiceGroup(services: [service], logger: Logger(label: "schema-ready-test"))
        let running = Task { try await group.run() }
        try await until { schema.suspendedCount == 1 }

        await group.triggerGracefulShutdown()
        try await running.value
        #expect(service.outcome.withLock { $0 } == false)
    }

    /// A service that waits for the schema, as the reaper and the webhook dispatcher do.
    private final class Waiting: Service {
        let schema: SchemaReady
        let outcome = Mutex<Bool?>(nil)
        init(schema: SchemaReady) { self.schema = schema }

        func run() async {
            let ready = await schema.wait()
            outcome.withLock { $0 = ready }
        }
    }
}

/// Polls `condition` until it holds (a state the test cannot be told of), failing after 10 s.
private func until(_ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition did not hold within 10 s", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}
