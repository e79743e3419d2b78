import Foundation
import HummingbirdTesting
import RunwardenCore
import RunwardenTestSupport
import Testing

/// The dashboard (`/ui`) in a real headless Chromium against a live server: the page is
/// opened once while the run is queued, the test moves the run along through the API, and
/// the page must show `succeeded` on its own (SSE), without a reload, and its Content-Security-Policy
/// must block nothing. Chromium is Debian's package (`.ci/run` installs it); DevTools is driven by
/// `Tests/Support/dashboard_probe.py`. A screenshot lands in `.build/test-output/`.
@Suite("Dashboard in a browser", .timeLimit(.minutes(10)))
struct DashboardBrowserTests {
    @Test("The run page follows a run from queued to succeeded live, without a reload, progress bar full")
    func runPageFollowsTheRunLive() async throws {
        let chromium = try Chromium.path()
        let python = try await ReferenceVerifier.python()
        let output = ReferenceVerifier.packageRoot.appendingPathComponent(".build/test-output")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let screenshot = output.appendingPathComponent("dashboard-run-page.png")
        try? FileManager.default.removeItem(at: screenshot)
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let readyFile = scratch.path + "/ready"

        let result = try await withApp(setup: .live) { client in
            let runID = try await client.createRun(runBody(tasks: "[\(taskJSON("build")),\(taskJSON("test", extra: #""needs":["build"]"#))]"))["id"]?.asString ?? ""
            let port = try #require(client.port)
            let probe = try BrowserProbe.start(
                python: python, chromium: chromium, url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)", readyFile: readyFile,
                screenshot: screenshot.path)
            defer { probe.stop() }
            // Move the run only once the page shows it: everything after is live updates.
            try await probe.waitForStatus(in: readyFile, within: .seconds(60)) { _ in true }
            for _ in 0..<2 {
                let taskID = try await client.claimTaskID()
                try await client.reportOK(taskID, reportBody("running"))
                // The page must have shown the run running before it ends (for `seen`).
                try await probe.waitForStatus(in: readyFile, within: .seconds(30)) { $0 == "running" }
                try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            }
            return try await probe.result(within: .seconds(60))
        }

        #expect(result["initial"]?.asString == "queued", "\(result)")
        #expect(result["final"]?.asString == "succeeded", "\(result)")
        #expect(result["text"]?.asString == "succeeded")
        #expect(result["seen"]?.asArray?.contains(.string("running")) == true, "the page never showed the run running: \(result)")
        #expect(result["reloaded"] == .bool(false), "the page reloaded")
        #expect(result["progress"]?["done"]?.asInt == 2 && result["progress"]?["total"]?.asInt == 2, "\(result)")
        #expect(result["runner_links"] == .array([.string("#/runners/host-a"), .string("#/runners/host-a")]), "task rows link their runner: \(result)")
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "script errors on the page: \(result)")
        #expect(result["policy_violations"]?.asArray?.isEmpty == true, "the page's CSP blocked part of it: \(result)")
        let png = try Data(contentsOf: screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "no PNG screenshot at \(screenshot.path)")
        print("dashboard screenshot: \(screenshot.path)")
    }
}

extension DashboardBrowserTests {
    @Test("The Runners page shows a runner online with the task it runs, then offline live when it says goodbye")
    func runnersPageFollowsARunnerLive() async throws {
        let chromium = try Chromium.path()
        let python = try await ReferenceVerifier.python()
        let output = ReferenceVerifier.packageRoot.appendingPathComponent(".build/test-output")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let screenshot = output.appendingPathComponent("dashboard-runners-page.png")
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let readyFile = scratch.path + "/ready"

        let (result, taskID) = try await withApp(setup: .live) { client in
            _ = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID(runner: "host-a")
            let port = try #require(client.port)
            let probe = try BrowserProbe.start(
                python: python, chromium: chromium, url: "http://127.0.0.1:\(port)/ui#/runners/host-a", readyFile: readyFile,
                screenshot: screenshot.path, expect: "offline", selector: "#runner-status")
            defer { probe.stop() }
            try await probe.waitForStatus(in: readyFile, within: .seconds(60)) { $0 == "online" }
            #expect(try await client.send(.post, "/v1/runners/host-a/goodbye").status == .accepted)
            return (try await probe.result(within: .seconds(60)), taskID)
        }

        #expect(result["initial"]?.asString == "online", "\(result)")
        #expect(result["final"]?.asString == "offline", "\(result)")
        #expect(result["runner_tasks"] == .array([.string(taskID)]), "the runner's current task is not shown: \(result)")
        #expect(result["reloaded"] == .bool(false), "the page reloaded")
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "script errors on the page: \(result)")
        #expect(result["policy_violations"]?.asArray?.isEmpty == true, "the page's CSP blocked part of it: \(result)")
    }
}

extension DashboardBrowserTests {
    /// Opens the run page and has the probe click `click` once it is there; the page must then
    /// show `expect` in `#run-status` without a reload.
    func clickOnRunPage(
        _ runBody: String, click: String, expect: String, name: String, prepare: @escaping @Sendable (any TestClientProtocol, String) async throws -> Void = { _, _ in }
    ) async throws -> (result: JSONValue, runID: String, runs: JSONValue) {
        let chromium = try Chromium.path()
        let python = try await ReferenceVerifier.python()
        let output = ReferenceVerifier.packageRoot.appendingPathComponent(".build/test-output")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        return try await withApp(setup: .live) { client in
            let runID = try await client.createRun(runBody)["id"]?.asString ?? ""
            try await prepare(client, runID)
            let port = try #require(client.port)
            let probe = try BrowserProbe.start(
                python: python, chromium: chromium, url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)", readyFile: scratch.path + "/ready",
                screenshot: output.appendingPathComponent("dashboard-\(name).png").path, expect: expect, click: click)
            defer { probe.stop() }
            let result = try await probe.result(within: .seconds(60))
            return (result, runID, try await client.getJSON("/v1/runs"))
        }
    }

    @Test("The run page's Approve button approves a waiting approval task and the run finishes live")
    func approveButton() async throws {
        let body = runBody(tasks: #"[{"name":"gate","approval":{}}]"#)
        let (result, runID, runs) = try await clickOnRunPage(body, click: "[data-approve]", expect: "succeeded", name: "approve")

        #expect(result["clicked"] == .bool(true), "\(result)")
        #expect(result["initial"]?.asString == "queued", "\(result)")
        #expect(result["final"]?.asString == "succeeded", "\(result)")
        #expect(result["reloaded"] == .bool(false))
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "\(result)")
        #expect(runs["items"]?.asArray?.first?["id"]?.asString == runID)
    }

    @Test("The run page's Re-run failed button starts a linked re-run and shows it")
    func rerunButton() async throws {
        let (result, runID, runs) = try await clickOnRunPage(
            oneTaskRun, click: "#run-rerun", expect: "queued", name: "rerun",
            prepare: { client, _ in
                let taskID = try await client.claimTaskID()
                try await client.reportOK(taskID, reportBody("failed", #""exit_code":1"#))
            })
        let newest = runs["items"]?.asArray?.first

        #expect(result["clicked"] == .bool(true), "\(result)")
        #expect(result["initial"]?.asString == "failed", "\(result)")
        #expect(result["final"]?.asString == "queued", "\(result)")
        #expect(newest?["rerun_of"]?.asString == runID)
        #expect(runs["items"]?.asArray?.count == 2)
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "\(result)")
    }
}

/// Debian's Chromium, which `.ci/run` installs (tests never install system packages).
enum Chromium {
    static let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]

    static func path() throws -> String {
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw ReferenceVerifier.SetupFailure(
                description: "Chromium is not installed: `bash .ci/run` installs it, or run `apt-get install -y chromium`")
        }
        return found
    }
}

/// `dashboard_probe.py` running in the background; its one line of JSON is the result.
struct BrowserProbe {
    let child: ChildProcess

    /// Watches `selector`'s `data-status` until it is `expect`.
    static func start(
        python: String, chromium: String, url: String, readyFile: String, screenshot: String, expect: String = "succeeded",
        selector: String = "#run-status", click: String? = nil
    ) throws -> BrowserProbe {
        let script = ReferenceVerifier.supportDirectory.appendingPathComponent("dashboard_probe.py").path
        return BrowserProbe(
            child: try ChildProcess(
                python,
                [
                    script, "--chromium", chromium, "--url", url, "--expect", expect, "--ready-file", readyFile,
                    "--screenshot", screenshot, "--timeout", "45", "--selector", selector,
                ] + (click.map { ["--click", $0] } ?? [])))
    }

    /// Waits until the status the page shows last (the probe rewrites `path` with each new
    /// one) satisfies `wanted`.
    func waitForStatus(in path: String, within limit: Duration, _ wanted: (String) -> Bool) async throws {
        let shown = await child.waitFor(within: limit) {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { wanted($0) ? $0 : nil }
        }
        guard shown != nil else {
            let last = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "nothing"
            throw ReferenceVerifier.SetupFailure(description: "the page did not show the expected status (it shows \(last)): \(child.output)")
        }
    }

    /// Waits for the probe to finish and reads its JSON line.
    func result(within limit: Duration) async throws -> JSONValue {
        guard await child.waitForExit(within: limit) == 0,
            let line = child.output.split(separator: "\n").last(where: { $0.hasPrefix("{") })
        else { throw ReferenceVerifier.SetupFailure(description: "the browser probe failed: \(child.output)") }
        return try JSONValue.parse(Data(line.utf8))
    }

    func stop() { child.stop() }
}
