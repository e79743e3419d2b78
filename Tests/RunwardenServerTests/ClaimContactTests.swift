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

    /// A service on a fresh SQLite file with a hand-moved clock and a 30 s lease (a contact
    /// that says nothing new written at most every 3 s).
    private static func manualService() throws -> (RunService, ManualClock, TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let service = RunService(
            store: try SQLiteRunStore(path: directory.databasePath), leaseSeconds: 30, clock: { clock.read() }, logger: quietLogger)
        return (service, clock, directory)
    }

    private static func lastSeen(_ service: RunService, _ name: String) async throws -> Int64 {
        try #require(Timestamp(iso8601: try await service.runner(name).lastSeenAt)).milliseconds
    }

    @Test("a contact that says nothing new within a tenth of a lease is not written again; a later one, or a new version, is")
    func repeatedContactIsNotRewritten() async throws {
        let (service, clock, directory) = try Self.manualService()
        defer { directory.remove() }
        let first = clock.read().milliseconds
        #expect(try await service.claim(RunnerContact(name: "r1", version: "1.0"), labels: [], wait: .zero) == .nothing)
        clock.advance(seconds: 2)
        #expect(try await service.claim(RunnerContact(name: "r1", version: "1.0"), labels: [], wait: .zero) == .nothing)
        #expect(try await Self.lastSeen(service, "r1") == first, "a claim 2 s after the last contact wrote it again")

        _ = try await service.claim(RunnerContact(name: "r1", version: "1.1"), labels: [], wait: .zero)
        #expect(try await service.runner("r1").version == "1.1")
        #expect(try await Self.lastSeen(service, "r1") == first + 2_000)

        clock.advance(seconds: 3)
        _ = try await service.heartbeat(RunnerContact(name: "r1"), taskIDs: [])
        #expect(try await Self.lastSeen(service, "r1") == first + 5_000, "a heartbeat a tenth of a lease later was not written")
    }

    @Test("a drain, a resume, a goodbye or silence between two claims is seen by the next claim at once")
    func registryChangesAreSeenAtOnce() async throws {
        let (service, clock, directory) = try Self.manualService()
        defer { directory.remove() }
        #expect(try await service.claim(RunnerContact(name: "idle"), labels: [], wait: .zero) == .nothing)
        _ = try await service.create(
            RunDefinition(run: RunSpec(workflow: "w"), tasks: [TaskSpec(name: "a", command: .argv(["true"]))]), idempotency: nil)

        _ = try await service.setDraining(true, runner: "idle")
        #expect(try await service.claim(RunnerContact(name: "idle"), labels: [], wait: .zero) == .draining)
        _ = try await service.setDraining(false, runner: "idle")
        guard case .task = try await service.claim(RunnerContact(name: "idle"), labels: [], wait: .zero) else {
            Issue.record("a resumed runner got nothing")
            return
        }

        _ = try await service.goodbye(runner: "idle")
        _ = try await service.claim(RunnerContact(name: "idle"), labels: [], wait: .zero)
        #expect(try await service.runner("idle").status == .online, "a claim after a goodbye left the runner offline")

        clock.advance(seconds: 31)
        _ = try await service.reap()
        #expect(try await service.runner("idle").status == .lost)
        clock.advance(seconds: 1)
        _ = try await service.claim(RunnerContact(name: "idle"), labels: [], wait: .zero)
        #expect(try await service.runner("idle").status == .online, "a claim after the runner went silent left it lost")
        let types = try await service.events(runID: nil, after: 0, limit: 50, wait: .zero).map(\.draft.type)
        #expect(types.filter { $0.hasPrefix("runner.") } == ["runner.online", "runner.offline", "runner.online", "runner.lost", "runner.online"])
    }
}
