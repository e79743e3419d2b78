import Foundation
import RunwardenCore
import Testing

@Suite("per-runner token rules")
struct RunnerTokenTests {
    @Test(
        "runner name patterns match with * and ? only",
        arguments: [
            ("host-*", "host-a", true), ("host-*", "host-", true), ("host-*", "other", false), ("*", "anything", true),
            ("h?st", "host", true), ("h?st", "hst", false), ("a*b*c", "axxbyyc", true), ("a*b*c", "axxbyy", false),
            ("build.01", "build.01", true), ("build.01", "build-01", false), ("*-gpu", "x-gpu", true), ("**", "", true),
        ])
    func patterns(pattern: String, name: String, matches: Bool) {
        #expect(RunnerNamePattern.matches(pattern, name) == matches)
    }

    @Test("a hostile pattern is refused, and a long one matches in bounded time")
    func hostilePatterns() {
        #expect(!RunnerNamePattern.isValid("host/[a]"))
        #expect(!RunnerNamePattern.isValid(""))
        #expect(!RunnerNamePattern.isValid(String(repeating: "a", count: 129)))
        let pattern = String(repeating: "*a", count: 64)
        #expect(RunnerNamePattern.isValid(pattern))
        #expect(!RunnerNamePattern.matches(pattern, String(repeating: "a", count: 63) + "b"))
    }

    @Test("a scope allows its names and narrows a claim's labels to its own")
    func scope() {
        let scope = RunnerTokenScope(runnerNames: ["build-*"], labels: ["linux"])
        #expect(scope.allows(runner: "build-7"))
        #expect(!scope.allows(runner: "deploy-1"))
        #expect(scope.labels(offered: ["linux", "gpu"]) == ["linux"])
        let open = RunnerTokenScope(runnerNames: nil, labels: nil)
        #expect(open.allows(runner: "anyone"))
        #expect(open.labels(offered: ["gpu"]) == ["gpu"])
    }

    @Test("a create body is read whole; every broken rule is reported")
    func parse() throws {
        let now = Timestamp(milliseconds: 1_800_000_000_000)
        let good = try JSONValue.parse(
            Data(#"{"description": "builders", "runner_names": ["build-*"], "labels": ["linux"], "expires_at": "2030-01-01T00:00:00Z"}"#.utf8))
        let definition = try RunnerTokenDefinition.parse(good, now: now).get()
        #expect(definition.scope == RunnerTokenScope(runnerNames: ["build-*"], labels: ["linux"]))
        #expect(definition.expiresAt == Timestamp(iso8601: "2030-01-01T00:00:00Z"))

        let bad = try JSONValue.parse(
            Data(#"{"runner_names": ["bad/name"], "labels": "linux", "expires_at": "2000-01-01T00:00:00Z", "scope": 1}"#.utf8))
        guard case .failure(let failure) = RunnerTokenDefinition.parse(bad, now: now) else {
            Issue.record("a broken body was accepted")
            return
        }
        #expect(Set(failure.errors.map(\.field)) == ["scope", "description", "runner_names[0]", "labels", "expires_at"])
    }

    @Test("a report through a token is refused for a task claimed under a name the token does not allow")
    func reportScope() throws {
        var scenario = Scenario([task("a")])
        try scenario.claim("a", runner: "other-1")
        #expect(throws: TransitionError.self) {
            try scenario.apply { change throws(TransitionError) in
                try change.report(
                    taskID: taskID("a"), StatusReport(status: .running), runner: nil, scope: RunnerTokenScope(runnerNames: ["build-*"], labels: nil))
            }
        }
        let applied = try scenario.apply { change throws(TransitionError) in
            try change.report(
                taskID: taskID("a"), StatusReport(status: .running), runner: nil, scope: RunnerTokenScope(runnerNames: ["other-*"], labels: nil))
        }
        #expect(applied)
    }

    @Test("a secret is rwr_ and 64 hex digits, different each time")
    func secrets() {
        let first = RunnerToken.generateSecret()
        #expect(first.hasPrefix("rwr_") && first.count == 68)
        #expect(first.dropFirst(4).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(first != RunnerToken.generateSecret())
    }
}
