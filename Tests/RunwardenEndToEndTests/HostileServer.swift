import Foundation
import RunwardenCore
import RunwardenTestSupport
import Testing

/// A scripted HTTP server that answers what a broken or hostile Runwarden server could: each
/// route (`METHOD /path`, query ignored) answers its listed responses in turn, repeating the
/// last. Every request is recorded, so a test sees what the runner or CLI sent back. python3's
/// http.server: no part of Runwarden, so nothing here can agree with the code under test.
final class HostileServer: @unchecked Sendable {
    let helper: ChildProcess
    let port: Int
    private let requestsURL: URL

    var url: String { "http://127.0.0.1:\(port)" }

    /// `routes`: route → responses, each `{"status": 200, "body": JSON}`, `{"status": 200, "raw": "JSON text"}`
    /// (sent as written: Python's encoder would escape every non-ASCII character) or `{"status": 204, "delay": 1}`.
    init(routes: JSONValue, in directory: URL) async throws {
        let script = directory.appendingPathComponent("hostile_server.py")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        let routesURL = directory.appendingPathComponent("hostile_routes.json")
        try routes.encoded().write(to: routesURL)
        requestsURL = directory.appendingPathComponent("hostile_requests.jsonl")
        helper = try ChildProcess(
            faultPython, [script.path, routesURL.path, requestsURL.path], outputTo: directory.appendingPathComponent("hostile_server.log"))
        guard await helper.waitForOutput("listening ", within: .seconds(10)),
            let line = helper.output.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }),
            let port = Int(line.dropFirst("listening ".count))
        else { throw FaultSetupError("the hostile server did not start: \(helper.output)") }
        self.port = port
    }

    /// The requests received so far: `{"method", "path", "body"}`.
    var requests: [JSONValue] {
        let text = (try? String(contentsOf: requestsURL, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONValue.parse(Data($0.utf8)) }
    }

    private static let script = #"""
        import json, sys, threading, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        routes = json.load(open(sys.argv[1]))
        served = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *args): pass
            def answer(self):
                path = self.path.split("?")[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    with open(sys.argv[2], "a") as log:
                        log.write(json.dumps({"method": self.command, "path": path, "body": body.decode("utf-8", "replace")}) + "\n")
                    answers = routes.get(self.command + " " + path) or [{"status": 404, "body": {"error": {"code": "not_found", "message": "no route"}}}]
                    index = served.get(path, 0)
                    served[path] = index + 1
                    response = answers[min(index, len(answers) - 1)]
                time.sleep(response.get("delay", 0))
                data = response["raw"].encode() if "raw" in response else json.dumps(response["body"]).encode() if "body" in response else b""
                self.send_response(response["status"])
                if data: self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            do_GET = do_POST = answer

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print("listening %d" % server.server_address[1], flush=True)
        server.serve_forever()
        """#
}

/// Polls `condition` every 50 ms until it holds or `limit` passes; whether it held.
func eventually(within limit: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// The process group of a process (/proc/PID/stat field 5, counted after the command's `)`).
func processGroup(of pid: Int32) -> Int32? {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
    let text = String(decoding: data, as: UTF8.self)
    guard let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 2 ? Int32(fields[2]) : nil
}

/// No process is left in the group.
func groupIsGone(_ pgid: Int32) -> Bool { kill(-pgid, 0) == -1 && errno == ESRCH }

extension Cluster {
    /// Waits (bounded) until the run's first task is running.
    func waitUntilRunning(_ runID: String, within limit: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + limit
        var run = try await client.run(runID)
        while run.tasks?.first?.status != .running, ContinuousClock.now < deadline {
            run = try await client.run(runID, afterVersion: run.version, wait: 2)
        }
        try #require(run.tasks?.first?.status == .running, "the task did not start: \(run.status)")
    }
}
