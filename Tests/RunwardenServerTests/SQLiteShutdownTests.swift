import Foundation
import Hummingbird
import RunwardenCore
import ServiceLifecycle
import Testing

@testable import RunwardenServer
@testable import RunwardenStoreSQLite

/// `serve`'s graceful shutdown closes the SQLite store it opened, last. (The store's own tests
/// show that closing waits for the writes still queued.)
@Suite("SQLite store in the server's shutdown", .timeLimit(.minutes(1)))
struct SQLiteShutdownTests {
    @Test("the app runs the store it opened as its first service, and graceful shutdown closes it")
    func gracefulShutdownClosesTheStore() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let ports = AsyncStream.makeStream(of: Int.self)
        let app = try await buildApplication(testConfiguration(database: directory.databasePath), logger: quietLogger) { port in
            ports.continuation.yield(port)
        }
        let store = try #require(app.services.first as? SQLiteRunStore, "the store must be the first service, so it stops last")
        let group = ServiceGroup(configuration: .init(services: [app], logger: quietLogger))
        let running = Task { try await group.run() }
        var listening = ports.stream.makeAsyncIterator()
        _ = await listening.next()

        #expect(try await store.renewLeases(now: Timestamp(Date())) == 0, "a write while the server runs")
        await group.triggerGracefulShutdown()
        try await running.value

        #expect(store.committer.isClosed)
        await #expect(throws: GroupCommit.closedError, "a write after shutdown fails at once") {
            _ = try await store.renewLeases(now: Timestamp(Date()))
        }
    }
}
