import Foundation
import RunwardenCore
import Testing

@testable import RunwardenServer

/// Open mode (no tokens) and browsers (SPEC §6): another site's page must not be able to
/// create, cancel or read anything, however it dresses the request; curl and the dashboard
/// keep working. Each request goes over a real socket with exactly the headers a browser sends.
@Suite("Browser guard")
struct BrowserGuardTests {
    static let createBody = #"{"workflow":"from-a-page","tasks":[{"name":"a","command":"touch /tmp/pwned"}]}"#

    /// Sends one request with `headers` (lines without CRLF) and returns the status code and body.
    static func exchange(
        port: Int, _ method: String, _ path: String, host: String? = nil, headers: [String] = [], body: String? = nil
    ) async throws -> (status: Int, text: String) {
        let connection = try await RawConnection.open(port: port)
        defer { Task { await connection.close() } }
        var lines = ["\(method) \(path) HTTP/1.1", "Host: \(host ?? "127.0.0.1:\(port)")", "Connection: close"] + headers
        if let body { lines += ["Content-Type: text/plain", "Content-Length: \(body.utf8.count)"] }
        try await connection.send(lines.joined(separator: "\r\n") + "\r\n\r\n" + (body ?? ""))
        let response = try await connection.readResponse()
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, response)
    }

    static func runCount(port: Int) async throws -> Int {
        let (status, text) = try await exchange(port: port, "GET", "/v1/runs")
        #expect(status == 200)
        return text.components(separatedBy: "\"workflow\"").count - 1
    }

    @Test(
        "a cross-site page's simple POST is refused 403 forbidden_origin and creates nothing",
        arguments: [
            ["Origin: http://evil.example"],
            ["Origin: null"],
            ["Origin: http://localhost:1"],
            ["Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: no-cors"],
            ["Sec-Fetch-Site: same-site", "Sec-Fetch-Mode: cors"],
            ["Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: navigate"],  // a form POST navigates but writes
        ])
    func crossSiteWritesAreRefused(headers: [String]) async throws {
        try await withLiveServer { port in
            let (status, text) = try await Self.exchange(port: port, "POST", "/v1/runs", headers: headers, body: Self.createBody)
            #expect(status == 403, "\(text)")
            #expect(text.contains("\"forbidden_origin\""))
            #expect(try await Self.runCount(port: port) == 0)
        }
    }

    @Test("a page reached through a rebound DNS name cannot read runs: a Host that is not loopback is refused")
    func reboundHostIsRefused() async throws {
        try await withLiveServer { port in
            for host in ["evil.example:\(port)", "127.0.0.1.evil.example", "127.evil.example", "10.0.0.1", "[::2]:\(port)", ""] {
                let (status, text) = try await Self.exchange(port: port, "GET", "/v1/runs", host: host)
                #expect(status == 403, "Host \(host): \(text)")
                #expect(text.contains("\"forbidden_origin\""))
            }
        }
    }

    @Test("curl, the dashboard and loopback names keep working")
    func sameOriginAndToolsPass() async throws {
        try await withLiveServer { port in
            let own = "Origin: http://127.0.0.1:\(port)"
            let created = try await Self.exchange(port: port, "POST", "/v1/runs", headers: [own, "Sec-Fetch-Site: same-origin"], body: Self.createBody)
            #expect(created.status == 202, "\(created.text)")
            #expect(try await Self.exchange(port: port, "POST", "/v1/runs", body: Self.createBody).status == 202)  // curl
            for host in ["localhost:\(port)", "LOCALHOST", "app.localhost:\(port)", "127.0.0.2", "[::1]:\(port)", "localhost."] {
                #expect(try await Self.exchange(port: port, "GET", "/v1/runs", host: host).status == 200, "Host \(host)")
            }
            // A link to the dashboard from another site opens it: a navigation the page cannot read.
            let navigation = try await Self.exchange(
                port: port, "GET", "/ui", headers: ["Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: navigate", "Sec-Fetch-Dest: document"])
            #expect(navigation.status == 200)
            #expect(try await Self.runCount(port: port) == 2)
        }
    }

    @Test("with tokens the guard stands aside: the token is what a page cannot send")
    func tokensReplaceTheGuard() async throws {
        try await withLiveServer({ configuration in
            configuration.clientToken = Tokens.client
            configuration.runnerToken = Tokens.runner
        }) { port in
            let answer = try await Self.exchange(
                port: port, "GET", "/v1/runs", host: "runwarden.internal:\(port)",
                headers: ["Authorization: Bearer \(Tokens.client)", "Origin: https://ci.example"])
            #expect(answer.status == 200, "\(answer.text)")
        }
    }

    @Test("/ui is served with a CSP that allows exactly its own inline scripts and style, nosniff and no framing")
    func dashboardSecurityHeaders() async throws {
        try await withLiveServer { port in
            let (status, text) = try await Self.exchange(port: port, "GET", "/ui")
            #expect(status == 200)
            let head = text.components(separatedBy: "\r\n\r\n")[0].lowercased()
            let policy = try #require(head.split(separator: "\r\n").first { $0.hasPrefix("content-security-policy:") })
            #expect(policy.contains("default-src 'none'"))
            #expect(policy.contains("frame-ancestors 'none'"))
            #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"))
            #expect(head.contains("x-content-type-options: nosniff"))
            #expect(head.contains("x-frame-options: deny"))
            // The hashes in the header are the hashes of the scripts the page carries, and no others:
            // the run views (dashboard_views.js, inserted when served), then the main script.
            let page = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
            let scripts = DashboardPolicy.inlineBlocks(of: "script", in: page)
            #expect(scripts.count == 2)
            let scriptSources = policy.split(separator: ";").first { $0.contains("script-src") }?.split(separator: " ").filter { $0.hasPrefix("'sha256-") }
            #expect(scriptSources?.map(String.init) == scripts.map { DashboardPolicy.hashSource($0).lowercased() })
            #expect(scripts.first?.contains("const RunViews") == true, "the run views come first: the main script calls them")
            let script = try #require(scripts.last)
            // …and the main script carries the server's status lists, not a copy of its own.
            #expect(script.contains(#""runTerminal":["succeeded","failed","canceled","timed_out"]"#))
            #expect(script.contains(#""task":["pending","queued","dispatched","running","canceling","succeeded""#))
        }
    }
}

@Suite("Loopback names")
struct LoopbackNameTests {
    @Test(
        "loopback names and addresses",
        arguments: [
            ("localhost", true), ("LocalHost", true), ("api.localhost", true), ("localhost.", true), ("127.0.0.1", true),
            ("127.255.0.9", true), ("::1", true), ("[::1]", true), ("0:0:0:0:0:0:0:1", true), ("::ffff:127.0.0.1", true),
            ("127.evil.example", false), ("localhost.evil.example", false), ("evillocalhost", false), ("128.0.0.1", false),
            ("0.0.0.0", false), ("::", false), ("[::2]", false), ("", false), ("127.0.0.1 ", false), ("1.2.3.4", false),
        ])
    func loopback(name: String, expected: Bool) {
        #expect(LoopbackName.matches(name) == expected)
    }

    @Test(
        "the host of a Host header",
        arguments: [
            ("localhost:8080", "localhost"), ("127.0.0.1", "127.0.0.1"), ("[::1]:80", "[::1]"), ("[::1]", "[::1]"),
            ("a:b:c", nil), ("[::1]x", nil), (":80", nil), ("host:8o", nil),
        ] as [(String, String?)])
    func hostOfHeader(value: String, expected: String?) {
        #expect(LoopbackName.hostOfHeader(value) == expected)
    }
}
