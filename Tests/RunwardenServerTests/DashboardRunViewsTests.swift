import Foundation
import RunwardenCore
import RunwardenTestSupport
import Testing

/// The run page's task graph and attempt timeline, and the runs list's workflow history, in
/// headless Chromium against a live server — the example run worked by a real runner (the built
/// `runwarden` executable), and a 1,000-task run timed. Screenshots of each view land in
/// `.build/test-output/` (the README's pictures in docs/images/ are these).
extension DashboardBrowserTests {
    @Test("The example run's page: a node per task with its needs as edges, statuses changing live as a real runner works it, a bar per attempt; the workflow's history; the dark scheme")
    func exampleRunViews() async throws {
        let browser = try await BrowserSetup(screenshot: "dashboard-run-views.png")
        let history = try await BrowserSetup(screenshot: "dashboard-runs-history.png")
        let dark = try await BrowserSetup(screenshot: "dashboard-run-views-dark.png")
        let work = try TemporaryDirectory()
        defer { [browser, history, dark].forEach { $0.remove() }; work.remove() }
        let shots = (
            graph: browser.shot("dashboard-graph.png"), timeline: browser.shot("dashboard-timeline.png"),
            history: history.shot("dashboard-history.png"), dark: dark.shot("dashboard-graph-dark.png"))
        let example = packageRoot.appendingPathComponent("examples/hello.yaml").path

        let (live, chart, darkPage, runIDs) = try await withApp(setup: .live) { client in
            let server = "http://127.0.0.1:\(try #require(client.port))"
            let first = try await Self.submit(example, to: server)
            let probe = try browser.probe(
                url: server + "/ui#/runs/\(first)", pressEnter: "g.node[data-task='build']",
                options: .init(shots: [("#run-graph", shots.graph), ("#run-timeline", shots.timeline)]))
            defer { probe.stop() }
            // The runner starts only once the page shows the run queued: everything after is live.
            try await probe.waitForStatus(within: .seconds(60)) { $0 == "queued" }
            let runner = try ChildProcess(
                runwardenBinary.path,
                ["runner", "--server", server, "--name", "host-a", "--labels", "linux", "--concurrency", "4", "--work-dir", work.path + "/runner", "--kill-grace", "2s"],
                outputTo: URL(fileURLWithPath: work.path + "/runner.log"))
            defer { runner.stop() }
            let live = try await probe.result(within: .seconds(90))

            // A second run, so the history has two bars.
            let second = try await Self.submit(example, to: server)
            let wait = try ChildProcess(runwardenBinary.path, ["wait", second, "--server", server, "--timeout", "60"])
            #expect(await wait.waitForExit(within: .seconds(70)) == 0, "\(wait.output) runner: \(runner.output)")
            let chartProbe = try history.probe(
                url: server + "/ui#/runs?workflow=hello", selector: #"svg[data-chart="durations"]"#,
                options: .init(shots: [("#workflow-history", shots.history)]))
            defer { chartProbe.stop() }
            let chart = try await chartProbe.result(within: .seconds(60))
            let darkProbe = try dark.probe(url: server + "/ui#/runs/\(first)", options: .init(shots: [("#run-graph", shots.dark)], dark: true))
            defer { darkProbe.stop() }
            return (live, chart, try await darkProbe.result(within: .seconds(60)), [first, second])
        }

        #expect(live["final"]?.asString == "succeeded", "\(live)")
        #expect(live["reloaded"] == .bool(false), "the page reloaded")
        #expect(live["exceptions"]?.asArray?.isEmpty == true, "script errors on the page: \(live)")
        #expect(live["policy_violations"]?.asArray?.isEmpty == true, "the page's CSP blocked part of it: \(live)")
        let graph = live["graph"]
        let names = ["build", "test", "docs", "report"]
        #expect(graph?["mode"]?.asString == "nodes")
        #expect(names.allSatisfy { graph?["nodes"]?[$0]?.asString == "succeeded" }, "every node ends succeeded: \(live)")
        #expect(graph?["nodes"]?.objectMembers?.count == 4, "one node per task: \(live)")
        let edges = Set(graph?["edges"]?.asArray?.map { $0.asArray?.compactMap(\.asString) ?? [] } ?? [])
        #expect(edges == [["build", "test"], ["test", "report"], ["docs", "report"]], "edges from needs: \(live)")
        for name in names {
            let seen = graph?["seen"]?[name]?.asArray?.compactMap(\.asString) ?? []
            #expect(seen.count >= 2 && seen.first != "succeeded" && seen.last == "succeeded", "\(name)'s node did not change live: \(seen)")
        }
        let bars = live["bars"]?.asArray?.compactMap { bar -> (String, Int, String)? in
            guard let b = bar.asArray, b.count == 3, let task = b[0].asString, let attempt = b[1].asInt, let phase = b[2].asString else { return nil }
            return (task, attempt, phase)
        } ?? []
        for name in names {
            #expect(bars.filter { $0.0 == name && $0.2 == "running" }.map(\.1) == [1], "one running bar per task (\(name)): \(bars)")
            #expect(bars.filter { $0.0 == name && $0.2 == "queued" }.count == 1, "the queued wait drawn apart (\(name)): \(bars)")
        }
        #expect(live["selected"]?["node"]?.asString == "build", "Enter on a node selects its task: \(live)")
        #expect(live["selected"]?["log"]?.asString == "build", "…and opens its log: \(live)")
        #expect(live["selected"]?["row"]?.asString?.hasPrefix("task_") == true, "…and marks its row: \(live)")

        let chartBars = chart["chart"]?.asArray ?? []
        #expect(chartBars.compactMap { $0.asArray?.first?.asString } == runIDs, "oldest first, one bar per run: \(chart)")
        #expect(chartBars.allSatisfy { $0.asArray?[1].asString == "succeeded" && ($0.asArray?[2].asInt ?? 0) > 0 }, "\(chart)")
        #expect(chart["exceptions"]?.asArray?.isEmpty == true, "\(chart)")

        #expect(darkPage["final"]?.asString == "succeeded")
        #expect(Self.isDark(darkPage["background"]?.asString), "the dark scheme's page background: \(darkPage["background"] ?? .null)")
        #expect(darkPage["exceptions"]?.asArray?.isEmpty == true, "\(darkPage)")
        for shot in [shots.graph, shots.timeline, shots.history, shots.dark, browser.screenshot] {
            #expect((try? Data(contentsOf: shot))?.starts(with: [0x89, 0x50, 0x4E, 0x47]) == true, "no PNG at \(shot.path)")
        }
        print("dashboard views: \(shots.graph.path) \(shots.timeline.path) \(shots.history.path) \(shots.dark.path)")
    }

    @Test("A 1,000-task run's page draws its graph and timeline in under 2 s, its task table when scrolled to; past the node limit the graph shows depth columns with counts")
    func thousandTaskRunPage() async throws {
        let browser = try await BrowserSetup(screenshot: "dashboard-1000-tasks.png")
        defer { browser.remove() }
        // Ten layers of 100: each task needs one of the layer before.
        let tasks = (0..<1000).map { i in taskJSON("t\(i)", extra: i < 100 ? "" : #""needs":["t\#(i - 100)"]"#) }
        let result = try await withApp(setup: .live) { client in
            let runID = try await client.createRun(runBody(tasks: "[" + tasks.joined(separator: ",") + "]"))["id"]?.asString ?? ""
            // The first layer ran (claimed, running, succeeded): bars to draw, the second layer queued.
            for _ in 0..<100 {
                let taskID = try await client.claimTaskID()
                try await client.reportOK(taskID, reportBody("running"))
                try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            }
            let port = try #require(client.port)
            let probe = try browser.probe(
                url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)", expect: "running", options: .init(untilMark: "run-page-drawn", scrollTo: "#run-tasks"))
            defer { probe.stop() }
            return try await probe.result(within: .seconds(60))
        }

        let drawn = try #require(Self.number(result["drawn_ms"]), "the page never marked itself drawn: \(result)")
        let table = result["table"]
        print("1,000-task run page drawn \(Int(drawn)) ms after navigation (graph as depth columns, 1,000 timeline rows); its table of 1,000 rows \(table?["ms"]?.asInt ?? -1) ms after scrolling to it")
        #expect(drawn < 2000, "the 1,000-task page took \(Int(drawn)) ms")
        #expect(result["graph"]?["mode"]?.asString == "columns", "\(result)")
        #expect(result["graph"]?["columns"] == .array(Array(repeating: .int(100), count: 10)), "ten depth columns of 100: \(result)")
        #expect(result["bars"]?.asArray?.filter { $0.asArray?.last?.asString == "running" }.count == 100, "a running bar per task that ran")
        #expect(table?["rows"]?.asInt == 1000, "the task table, scrolled to, lists every task: \(result)")
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "\(result)")
    }
}

extension DashboardBrowserTests {
    @Test("A retried task has a queued and a running bar per attempt: the lost attempt's, then the retry's")
    func retryIsABarOfItsOwn() async throws {
        let browser = try await BrowserSetup(screenshot: "dashboard-retry.png")
        defer { browser.remove() }
        let result = try await withApp(setup: .live, { $0.leaseSeconds = 1; $0.reaperInterval = .milliseconds(200) }) { client in
            let runID = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""retries":1"#))]"))["id"]?.asString ?? ""
            let first = try await client.claimTaskID()
            try await client.reportOK(first, reportBody("running"))
            // No heartbeat: the reaper queues attempt 2 once the 1 s lease has passed.
            let deadline = ContinuousClock.now + .seconds(30)
            while try await client.getJSON("/v1/runs/\(runID)").task(named: "build")?["attempt"]?.asInt != 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let second = try await client.claimTaskID()
            try await client.reportOK(second, reportBody("running", #""attempt":2"#))
            try await client.reportOK(second, reportBody("succeeded", #""attempt":2,"exit_code":0"#))
            let port = try #require(client.port)
            let probe = try browser.probe(url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)")
            defer { probe.stop() }
            return try await probe.result(within: .seconds(60))
        }
        let bars = result["bars"]?.asArray?.compactMap { $0.asArray.map { b in b.map { $0.asString ?? $0.asInt.map(String.init) ?? "" } } } ?? []
        #expect(bars == [["build", "1", "queued"], ["build", "1", "running"], ["build", "2", "queued"], ["build", "2", "running"]], "\(result)")
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "\(result)")
    }

    @Test("Task names with markup are text in the graph and the timeline: nothing of them becomes an element or runs")
    func hostileTaskNamesStayText() async throws {
        let browser = try await BrowserSetup(screenshot: "dashboard-hostile-names.png")
        defer { browser.remove() }
        let image = #"<img src=x onerror=\"window.__injected=true\">"#
        let script = #"</text></svg><script>window.__injected=true</script>"#
        let body = runBody(tasks: "[\(taskJSON(image)),\(taskJSON(script, extra: #""needs":["\#(image)"]"#))]")
        let result = try await withApp(setup: .live) { client in
            let runID = try await client.createRun(body)["id"]?.asString ?? ""
            let port = try #require(client.port)
            let probe = try browser.probe(url: "http://127.0.0.1:\(port)/ui#/runs/\(runID)", expect: "queued")
            defer { probe.stop() }
            return try await probe.result(within: .seconds(60))
        }
        let shownImage = #"<img src=x onerror="window.__injected=true">"#
        #expect(result["graph"]?["nodes"]?[shownImage]?.asString == "queued", "\(result)")
        #expect(result["graph"]?["nodes"]?[script]?.asString == "pending", "\(result)")
        #expect(result["graph"]?["edges"] == .array([.array([.string(shownImage), .string(script)])]), "\(result)")
        #expect(result["log"]?["images"]?.asInt == 0, "a task name became an element: \(result)")
        #expect(result["log"]?["injected"] == .bool(false), "a task name ran: \(result)")
        #expect(result["exceptions"]?.asArray?.isEmpty == true, "\(result)")
    }
}

extension DashboardBrowserTests {
    /// `runwarden submit FILE` against `server`; the run id it prints.
    static func submit(_ file: String, to server: String) async throws -> String {
        let submit = try ChildProcess(runwardenBinary.path, ["submit", file, "--server", server])
        let status = await submit.waitForExit(within: .seconds(30))
        let runID = submit.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0, runID.hasPrefix("run_") else {
            throw ReferenceVerifier.SetupFailure(description: "runwarden submit exited \(status.map(String.init) ?? "late"): \(submit.output)")
        }
        return runID
    }

    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let n): Double(n)
        case .double(let n): n
        default: nil
        }
    }

    /// A CSS colour `rgb(r, g, b)` darker than mid-grey.
    static func isDark(_ color: String?) -> Bool {
        let channels = (color ?? "").split { !$0.isNumber }.compactMap { Int($0) }
        return channels.count >= 3 && channels.prefix(3).reduce(0, +) < 3 * 96
    }
}
