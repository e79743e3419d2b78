import Foundation
import RunwardenCore
import RunwardenServer
import RunwardenStoreSQLite
import Testing

/// A claim long-poll is contact for as long as it waits: an idle runner parked in a claim
/// longer than the lease stays `online` (SPEC §8).
@Suite("claim long-polls keep a runner online")
struct ClaimContactTests {
    @Test("a claim waiting longer than the lease records contact again every third of a lease")
    func waitingClaimRenewsContact() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let service = RunService(store: try SQLiteRunStore(path: directory.databasePath), leaseSeconds: 1, logger: quietLogger)
        let started = Timestamp(Date())
        let outcome = try await service.claim(RunnerContact(name: "idle"), labels: [], wait: .milliseconds(2500))
        #expect(outcome == .nothing)
        let runner = try await service.runner("idle")
        let lastSeen = try #require(Timestamp(iso8601: runner.lastSeenAt))
        #expect(lastSeen.milliseconds - started.milliseconds >= 1500, "last contact \(lastSeen.milliseconds - started.milliseconds) ms into a 2.5 s wait")
        #expect(runner.status == .online)
        #expect(try await service.events(runID: nil, after: 0, limit: 10, wait: .zero).map(\.draft.type) == ["runner.online"])
    }
}
