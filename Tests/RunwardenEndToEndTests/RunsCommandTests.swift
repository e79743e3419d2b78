import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// `runwarden runs` with the run-list filters of SPEC §10, against the real server.
@Suite("runwarden runs filters", .timeLimit(.minutes(2)))
struct RunsCommandTests {
    /// Runs `runwarden runs`; each call needs its own `name` (its output file).
    func runs(_ arguments: [String], _ cluster: Cluster, name: String) async throws -> (status: Int32?, output: String) {
        let child = try ChildProcess(["runs", "--server", cluster.url] + arguments, in: cluster.directory, name: "runs-" + name)
        let status = await child.waitForExit()
        return (status, child.output)
    }

    @Test("--metadata (repeatable), --created-after and --created-before narrow the list; a pair without = is refused")
    func filterFlags() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        let body = { (env: String, team: String) in
            #"{"workflow": "deploy", "metadata": {"env": "\#(env)", "team": "\#(team)"}, "tasks": [{"name": "a", "command": "true"}]}"#
        }
        let prodCore = try await cluster.submit(body("prod", "core"))
        let prodWeb = try await cluster.submit(body("prod", "web"))
        let staging = try await cluster.submit(body("staging", "core"))
        let created = try await cluster.client.run(prodCore).createdAt

        let prod = try await runs(["--metadata", "env=prod"], cluster, name: "prod")
        #expect(prod.status == 0, "\(prod.output)")
        #expect(prod.output.contains(prodCore) && prod.output.contains(prodWeb) && !prod.output.contains(staging), "\(prod.output)")

        let both = try await runs(["--metadata", "env=prod", "--metadata", "team=web"], cluster, name: "both")
        #expect(both.output.contains(prodWeb) && !both.output.contains(prodCore) && !both.output.contains(staging), "\(both.output)")

        let later = try await runs(["--created-after", "2999-01-01T00:00:00Z"], cluster, name: "later")
        #expect(later.status == 0 && !later.output.contains("run_"), "\(later.output)")
        let before = try await runs(["--created-before", created], cluster, name: "before")
        #expect(before.status == 0 && !before.output.contains(prodCore), "\(before.output)")

        let badPair = try await runs(["--metadata", "env"], cluster, name: "badPair")
        #expect(badPair.status != 0)
        #expect(badPair.output.contains("KEY=VALUE"), "\(badPair.output)")
        let badTime = try await runs(["--created-after", "yesterday"], cluster, name: "badTime")
        #expect(badTime.status != 0)
        #expect(badTime.output.contains("created_after"), "\(badTime.output)")
    }

    @Test("runwarden status says which runs hold the concurrency slot a run waits for")
    func statusShowsTheConcurrencyWait() async throws {
        let cluster = try Cluster()
        try await cluster.startServer()
        let body = #"{"workflow": "deploy", "concurrency": {"key": "deploy-prod"}, "tasks": [{"name": "a", "command": "true"}]}"#
        let holder = try await cluster.submit(body)
        let waiting = try await cluster.submit(body)
        let status = try ChildProcess(["status", waiting, "--server", cluster.url], in: cluster.directory, name: "status")
        _ = await status.waitForExit()
        #expect(status.output.contains("waits for a deploy-prod slot, held by \(holder)"), "\(status.output)")
    }
}
