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
        let browser = try await BrowserSetup(screenshot: "dashboard-run-page.png")
        defer { browser.remove() }

        let result = try await withApp(setup: .live) { client in
            let runID = try await client.createRun(runBody(tasks: "[\(taskJSON("build")),\(taskJSON("test", extra: #""needs":["build"]"#))]"))["id"]?.asString ?? ""
            let port = try #require(client.port)
            let probe = try browser.probe(url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)")
            defer { probe.stop() }
            // Move the run only once the page shows it: everything after is live updates.
            try await probe.waitForStatus(within: .seconds(60)) { _ in true }
            for _ in 0..<2 {
                let taskID = try await client.claimTaskID()
                try await client.reportOK(taskID, reportBody("running"))
                // The page must have shown the run running before it ends (for `seen`).
                try await probe.waitForStatus(within: .seconds(30)) { $0 == "running" }
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
        let png = try Data(contentsOf: browser.screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "no PNG screenshot at \(browser.screenshot.path)")
        print("dashboard screenshot: \(browser.screenshot.path)")
    }
}

extension DashboardBrowserTests {
    @Test("The Runners page shows a runner online with the task it runs, then offline live when it says goodbye")
    func runnersPageFollowsARunnerLive() async throws {
        let browser = try await BrowserSetup(screenshot: "dashboard-runners-page.png")
        defer { browser.remove() }

        let (result, taskID) = try await withApp(setup: .live) { client in
            _ = try await client.createRun(oneTaskRun)
            let taskID = try await client.claimTaskID(runner: "host-a")
            let port = try #require(client.port)
            let probe = try browser.probe(url: "http://127.0.0.1:\(port)/ui#/runners/host-a", expect: "offline", selector: "#runner-status")
            defer { probe.stop() }
            try await probe.waitForStatus(within: .seconds(60)) { $0 == "online" }
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
    @Test("A task's log pane shows its output as text, colour codes as spans, follows it live until it is complete, notes dropped bytes")
    func logPaneFollowsATaskLive() async throws {
        let browser = try await BrowserSetup(screenshot: "dashboard-log-pane.png")
        defer { browser.remove() }
        // Markup and script a task prints are text; a colour code is a colour, never visible.
        let first = """
            line 1
            <img src=x onerror="window.__injected=true">
            <script>window.__injected=true</script>
            \u{1B}[31mred\u{1B}[0m plain

            """
        // Past the 1 KiB cap: the pane shows the first 512 bytes, a note, the newest 512.
        let later = "line after\n" + String(repeating: "filler line\n", count: 150) + "last line\n"
        let dropped = first.utf8.count + later.utf8.count - 1024

        let result = try await withApp(setup: .live, { $0.logMaxBytes = 1024 }) { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            #expect(try await client.shipLog(taskID, first, at: 0).status == .ok)
            let port = try #require(client.port)
            let probe = try browser.probe(
                url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)", expect: "complete", selector: "#log-pane",
                click: "#run-tasks tr[data-task-id='\(taskID)']")
            defer { probe.stop() }
            // Ship more only once the pane follows the log: it must arrive without a reload.
            try await probe.waitForStatus(within: .seconds(60)) { $0 == "live" }
            let end = first.utf8.count + later.utf8.count
            #expect(try await client.shipLog(taskID, later, at: first.utf8.count).status == .ok)
            #expect(try await client.shipLog(taskID, "", at: end, final: true).status == .ok)
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            return try await probe.result(within: .seconds(60))
        }

        let shownFirst = "line 1\n<img src=x onerror=\"window.__injected=true\">\n<script>window.__injected=true</script>\nred plain\n"
        let note = "[\(dropped) bytes dropped here to keep the log within its cap — Download has the rest]"
        let expected = shownFirst + later.prefix(512 - first.utf8.count) + note + later.suffix(512)
        #expect(result["final"]?.asString == "complete", "\(result)")
        #expect(result["seen"]?.asArray?.contains(.string("live")) == true, "\(result)")
        #expect(result["log"]?["text"]?.asString == expected, "\(result)")
        #expect(result["log"]?["red"] == .array([.string("red")]), "the colour code is not a span: \(result)")
        #expect(result["log"]?["notes"] == .array([.string(note)]), "\(result)")
        #expect(result["log"]?["images"]?.asInt == 0, "the task's markup became an element: \(result)")
        #expect(result["log"]?["injected"] == .bool(false), "the task's markup ran: \(result)")
        #expect(result["reloaded"] == .bool(false), "the page reloaded")
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "script errors on the page: \(result)")
        #expect(result["policy_violations"]?.asArray?.isEmpty == true, "the page's CSP blocked part of it: \(result)")
    }
}

extension DashboardBrowserTests {
    @Test("A task row is reachable by keyboard: Enter on it opens its log pane")
    func logPaneOpensFromTheKeyboard() async throws {
        let browser = try await BrowserSetup(screenshot: "dashboard-log-pane-keyboard.png")
        defer { browser.remove() }
        let result = try await withApp(setup: .live) { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            #expect(try await client.shipLog(taskID, "from the keyboard\n", at: 0).status == .ok)
            let port = try #require(client.port)
            let probe = try browser.probe(
                url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)", expect: "live", selector: "#log-pane",
                pressEnter: "#run-tasks tr[data-task-id='\(taskID)']")
            defer { probe.stop() }
            return try await probe.result(within: .seconds(60))
        }
        #expect(result["final"]?.asString == "live", "\(result)")
        #expect(result["log"]?["text"]?.asString?.hasPrefix("from the keyboard") == true, "\(result)")
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "script errors on the page: \(result)")
    }
}

/// What a browser test needs: Chromium, Python for the probe, a screenshot path under
/// `.build/test-output/` (an old screenshot removed), and a scratch folder for the ready file.
struct BrowserSetup: Sendable {
    let chromium: String
    let python: String
    let screenshot: URL
    /// `.build/test-output/`, where screenshots land.
    let output: URL
    let scratch: TemporaryDirectory
    var readyFile: String { scratch.path + "/ready" }

    init(screenshot name: String) async throws {
        chromium = try Chromium.path()
        python = try await ReferenceVerifier.python()
        output = packageRoot.appendingPathComponent(".build/test-output")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        screenshot = output.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: screenshot)
        scratch = try TemporaryDirectory()
    }

    /// Opens `url` in the probe, watching `selector`'s data-status until it is `expect`.
    func probe(
        url: String, expect: String = "succeeded", selector: String = "#run-status", click: String? = nil, pressEnter: String? = nil,
        options: BrowserProbe.Options = .init()
    ) throws -> BrowserProbe {
        try BrowserProbe.start(
            python: python, chromium: chromium, url: url, readyFile: readyFile, screenshot: screenshot.path, expect: expect,
            selector: selector, click: click, pressEnter: pressEnter, options: options)
    }

    /// A path for a screenshot of one part of the page, under `output` (an old one removed).
    func shot(_ name: String) -> URL {
        let url = output.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: url)
        return url
    }

    func remove() { scratch.remove() }
}

extension DashboardBrowserTests {
    /// Opens the run page and has the probe click `click` once it is there; the page must then
    /// show `expect` in `#run-status` without a reload.
    func clickOnRunPage(
        _ runBody: String, click: String, expect: String, name: String, prepare: @escaping @Sendable (any TestClientProtocol, String) async throws -> Void = { _, _ in }
    ) async throws -> (result: JSONValue, runID: String, runs: JSONValue) {
        let browser = try await BrowserSetup(screenshot: "dashboard-\(name).png")
        defer { browser.remove() }
        return try await withApp(setup: .live) { client in
            let runID = try await client.createRun(runBody)["id"]?.asString ?? ""
            try await prepare(client, runID)
            let port = try #require(client.port)
            let probe = try browser.probe(url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)", expect: expect, click: click)
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
    /// The probe rewrites it with each new status the page shows.
    let readyFile: String

    /// What else the probe does: screenshots of parts of the page (CSS selector → file), the dark
    /// colour scheme, and a performance mark of the page to wait for after the status.
    struct Options {
        var shots: [(selector: String, file: URL)] = []
        var dark = false
        var untilMark: String?
        /// At the end, scroll to this element and wait for the task table's rows.
        var scrollTo: String?

        var arguments: [String] {
            shots.flatMap { ["--shot", "\($0.selector)=\($0.file.path)"] } + (dark ? ["--dark"] : [])
                + (untilMark.map { ["--until-mark", $0] } ?? []) + (scrollTo.map { ["--scroll-to", $0] } ?? [])
        }
    }

    /// Watches `selector`'s `data-status` until it is `expect`.
    static func start(
        python: String, chromium: String, url: String, readyFile: String, screenshot: String, expect: String = "succeeded",
        selector: String = "#run-status", click: String? = nil, pressEnter: String? = nil, options: Options = .init()
    ) throws -> BrowserProbe {
        let script = ReferenceVerifier.supportDirectory.appendingPathComponent("dashboard_probe.py").path
        return BrowserProbe(
            child: try ChildProcess(
                python,
                [
                    script, "--chromium", chromium, "--url", url, "--expect", expect, "--ready-file", readyFile,
                    "--screenshot", screenshot, "--timeout", "45", "--selector", selector,
                ] + (click.map { ["--click", $0] } ?? []) + (pressEnter.map { ["--press-enter", $0] } ?? []) + options.arguments),
            readyFile: readyFile)
    }

    /// Waits until the status the page shows last satisfies `wanted`.
    func waitForStatus(within limit: Duration, _ wanted: (String) -> Bool) async throws {
        let shown = await child.waitFor(within: limit) {
            (try? String(contentsOfFile: readyFile, encoding: .utf8)).flatMap { wanted($0) ? $0 : nil }
        }
        guard shown != nil else {
            let last = (try? String(contentsOfFile: readyFile, encoding: .utf8)) ?? "nothing"
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

extension DashboardBrowserTests {
    @Test("The run page shows a run waiting for a concurrency slot beside its status, and its admission live")
    func concurrencyWaitIsShownBesideTheStatus() async throws {
        let browser = try await BrowserSetup(screenshot: "dashboard-concurrency.png")
        defer { browser.remove() }
        let keyed = runBody(tasks: "[\(taskJSON("deploy"))]", extra: #""concurrency":{"key":"deploy-prod"}"#)
        let result = try await withApp(setup: .live) { client in
            _ = try await client.createRun(keyed)
            let waitingID = try await client.createRun(keyed)["id"]?.asString ?? ""
            let port = try #require(client.port)
            let probe = try browser.probe(
                url: "http://127.0.0.1:\(port)/ui#/runs/\(waitingID)", expect: "admitted", selector: "#run-concurrency")
            defer { probe.stop() }
            try await probe.waitForStatus(within: .seconds(60)) { $0 == "waiting" }
            let holderTask = try await client.claimTaskID()
            try await client.reportOK(holderTask, reportBody("succeeded", #""exit_code":0"#))
            return try await probe.result(within: .seconds(60))
        }

        #expect(result["initial"]?.asString == "waiting", "\(result)")
        #expect(result["final"]?.asString == "admitted", "\(result)")
        #expect(result["text"]?.asString?.contains("deploy-prod") == true, "\(result)")
        #expect(result["reloaded"] == .bool(false))
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "\(result)")
    }
}
