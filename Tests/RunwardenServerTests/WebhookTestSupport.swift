import Foundation
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import RunwardenTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - The Standard Webhooks reference implementation (PyPI), set up by the tests themselves

/// A Python with PyPI's `standardwebhooks` in a venv under the package's `.build/test-python`
/// (git-ignored), created and filled on first use: `swift test` from a fresh clone is the only
/// set-up step. One set-up per test process (an actor-held task), and one per checkout across
/// processes (an exclusive `flock` on `.build/test-python.lock`). A failure is thrown with what
/// went wrong, so the tests that need the package fail — they never skip.
enum ReferenceVerifier {
    static let supportDirectory = packageRoot.appendingPathComponent("Tests/Support")
    static let venv = packageRoot.appendingPathComponent(".build/test-python")
    static var venvPython: String { venv.appendingPathComponent("bin/python").path }

    private static let once = OnceTask()

    /// What the tests import from PyPI: the Standard Webhooks reference implementation, and a
    /// WebSocket client that drives Chromium's DevTools protocol (`DashboardBrowserTests`).
    static let packages = ["standardwebhooks", "websocket-client"]
    static let importCheck = "import standardwebhooks, websocket"

    /// The venv's interpreter, once every package in `packages` imports in it.
    static func python() async throws -> String { try await once.value() }

    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    fileprivate static func install() async throws -> String {
        let build = packageRoot.appendingPathComponent(".build")
        try FileManager.default.createDirectory(at: build, withIntermediateDirectories: true)
        let lockPath = build.appendingPathComponent("test-python.lock").path
        let descriptor = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard descriptor >= 0 else { throw SetupFailure(description: "cannot open the set-up lock \(lockPath): errno \(errno)") }
        defer { close(descriptor) }  // closing releases the lock
        let lockDeadline = ContinuousClock.now + .seconds(300)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard ContinuousClock.now < lockDeadline else {
                throw SetupFailure(description: "another process held \(lockPath) for 5 minutes while setting up \(venv.path)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }

        let python = venvPython
        if FileManager.default.isExecutableFile(atPath: python),
            try await runProcess(python, ["-c", importCheck]).status == 0
        {
            return python
        }
        var usable = FileManager.default.isExecutableFile(atPath: python)
        if usable { usable = try await runProcess(python, ["-c", "pass"]).status == 0 }
        if !usable {
            var attempts: [String] = []
            var created = false
            for (executable, prefix) in [("/usr/bin/env", ["python3"]), ("/usr/bin/python3", []), ("/usr/local/bin/python3", [])]
            where FileManager.default.isExecutableFile(atPath: executable) {
                let result = try await runProcess(executable, prefix + ["-m", "venv", "--clear", venv.path], timeout: .seconds(120))
                if result.status == 0 {
                    created = true
                    break
                }
                attempts.append("\(([executable] + prefix).joined(separator: " ")) -m venv: exit \(result.status): \(result.output)")
            }
            guard created else {
                throw SetupFailure(
                    description: "could not create a Python venv at \(venv.path) for the Standard Webhooks interop tests "
                        + "(python3 with the venv module is required): " + attempts.joined(separator: "; "))
            }
        }
        let installed = try await runProcess(
            python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + packages, timeout: .seconds(300))
        guard installed.status == 0 else {
            throw SetupFailure(
                description: "could not install the tests' Python packages: "
                    + "`\(python) -m pip install \(packages.joined(separator: " "))` exited \(installed.status): \(installed.output)")
        }
        let check = try await runProcess(python, ["-c", importCheck])
        guard check.status == 0 else {
            throw SetupFailure(description: "`\(importCheck)` still fails in \(venv.path) after pip install: \(check.output)")
        }
        return python
    }

    struct ProcessResult {
        var status: Int32
        var output: String
    }

    /// Runs a process to its end (bounded by `timeout`), with stdout and stderr collected.
    static func runProcess(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> ProcessResult {
        let (status, output) = try await ChildProcess.run(executable, arguments, within: timeout)
        guard let status else {
            throw SetupFailure(description: "`\(executable) \(arguments.joined(separator: " "))` took longer than \(timeout)")
        }
        return ProcessResult(status: status, output: output.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// One set-up task per process, shared by every test that asks while it runs and after.
private actor OnceTask {
    private var task: Task<String, any Error>?

    func value() async throws -> String {
        if let task { return try await task.value }
        let task = Task.detached { try await ReferenceVerifier.install() }
        self.task = task
        return try await task.value
    }
}

// MARK: - A receiver process

/// One request as `webhook_scripted_receiver.py` logged it.
struct ReceivedRequest: Sendable, CustomStringConvertible {
    let path: String
    /// The Standard Webhooks reference implementation accepted the signature with one of the
    /// receiver's secrets (and the timestamp as recent).
    let verified: Bool
    /// Which of the receiver's secrets verified it.
    let secretIndex: Int?
    let webhookID: String?
    let webhookTimestamp: String?
    let webhookSignature: String?
    let payload: JSONValue
    /// The status the receiver answered; nil when it never answers (`hang`).
    let answered: Int?
    let receivedAt: Double

    init(_ line: JSONValue) {
        path = line["path"]?.asString ?? ""
        verified = line["verified"]?.asBool ?? false
        secretIndex = line["secret_index"]?.asInt
        webhookID = line["webhook_id"]?.asString
        webhookTimestamp = line["webhook_timestamp"]?.asString
        webhookSignature = line["webhook_signature"]?.asString
        payload = line["payload"] ?? .null
        answered = line["answered"]?.asInt
        switch line["received_at"] {
        case .double(let value): receivedAt = value
        case .int(let value): receivedAt = Double(value)
        default: receivedAt = 0
        }
    }

    var type: String? { payload["type"]?.asString }
    var eventID: String? { payload["event_id"]?.asString }
    var seq: Int? { payload["seq"]?.asInt }
    var runID: String? { payload["run_id"]?.asString }

    var description: String {
        "\(path) \(type ?? "?") seq \(seq ?? -1) verified \(verified) secret \(secretIndex.map(String.init) ?? "-") answered \(answered.map(String.init) ?? "-")"
    }
}

/// `Tests/Support/webhook_scripted_receiver.py` run with the venv's Python, bound to 127.0.0.1.
/// `stop()` kills it (also safe from `defer`, and more than once).
final class ScriptedReceiver: @unchecked Sendable {
    let port: Int
    private let child: ChildProcess
    private let directory: TemporaryDirectory
    private let logPath: String

    private init(port: Int, child: ChildProcess, directory: TemporaryDirectory, logPath: String) {
        self.port = port
        self.child = child
        self.directory = directory
        self.logPath = logPath
    }

    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts a receiver knowing `secrets`; on `port` when given (it must be free), else any.
    static func start(
        secrets: [String], port: Int? = nil, failFirst: Int = 0, failStatus: Int = 503, status: Int? = nil, retryAfter: String? = nil,
        hang: Bool = false
    ) async throws -> ScriptedReceiver {
        let python = try await ReferenceVerifier.python()
        let directory = try TemporaryDirectory()
        let portFile = directory.path + "/port"
        let logPath = directory.path + "/requests.jsonl"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        var arguments = [
            ReferenceVerifier.supportDirectory.appendingPathComponent("webhook_scripted_receiver.py").path,
            "--port-file", portFile, "--log", logPath,
        ]
        for secret in secrets { arguments += ["--secret", secret] }
        if let port { arguments += ["--port", String(port)] }
        if failFirst > 0 { arguments += ["--fail-first", String(failFirst), "--fail-status", String(failStatus)] }
        if let status { arguments += ["--status", String(status)] }
        if let retryAfter { arguments += ["--retry-after", retryAfter] }
        if hang { arguments.append("--hang") }

        // The script writes the port it bound (0 unless a test needs the port before it listens).
        let child = try ChildProcess(python, arguments, outputTo: URL(fileURLWithPath: directory.path + "/output.log"))
        let bound = await child.waitFor(within: .seconds(10)) {
            (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
        }
        guard let bound else {
            child.stop()
            directory.remove()
            throw StartFailure(description: "the webhook receiver did not start listening within 10 s: \(child.output)")
        }
        return ScriptedReceiver(port: bound, child: child, directory: directory, logPath: logPath)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    func url(_ path: String = "/hook") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Every request logged so far, in arrival order.
    func requests() -> [ReceivedRequest] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        // Only complete lines: a line being written has no newline yet.
        var lines = text.components(separatedBy: "\n")
        lines.removeLast()
        return lines.compactMap { line in (try? JSONValue.parse(Data(line.utf8))).map(ReceivedRequest.init) }
    }

    /// Polls the log until `done` holds or `timeout` passes; the requests either way (the
    /// caller's expectations then say what was missing).
    @discardableResult
    func waitForRequests(timeout: Duration = .seconds(10), until done: ([ReceivedRequest]) -> Bool) async throws -> [ReceivedRequest] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let seen = requests()
            if done(seen) || ContinuousClock.now > deadline { return seen }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// Kills the receiver: its port closes at once. Safe from `defer`, and more than once.
    func stop() {
        child.stop()
        directory.remove()
    }

    deinit { stop() }
}

/// A fresh secret in the Standard Webhooks form: `whsec_` + base64 of 32 random bytes.
func makeWebhookSecret() -> String {
    "whsec_" + Data((0..<32).map { _ in UInt8.random(in: .min ... .max) }).base64EncodedString()
}

// MARK: - Apps that deliver

/// The real application with its webhook dispatcher on, over a live loopback socket (so the
/// dispatcher Service runs), on `database` (a fresh temp file when nil), with a short schedule.
func withDeliveryApp<Value: Sendable>(
    database: String? = nil, retry: [Int64] = [200, 200, 400],
    _ body: @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    let configure: (inout ServerConfiguration) -> Void = { configuration in
        configuration.dispatchWebhooks = true
        configuration.webhookRetryMs = retry
        configuration.reaperInterval = nil
    }
    if let database { return try await withApp(database: database, setup: .live, configure, body) }
    return try await withApp(setup: .live, configure, body)
}

// MARK: - Requests

extension TestClientProtocol {
    /// `POST /v1/webhooks`, which must answer `201`; the answer.
    func subscribe(
        url: String, events: [String]? = nil, secret: String? = nil, description: String? = nil, token: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> JSONValue {
        var members: [JSONValue.Member] = [.init("url", .string(url))]
        if let events { members.append(.init("events", JSONValue(strings: events))) }
        if let secret { members.append(.init("secret", .string(secret))) }
        if let description { members.append(.init("description", .string(description))) }
        let body = String(decoding: JSONValue.object(members).encoded(), as: UTF8.self)
        let response = try await send(.post, "/v1/webhooks", json: body, token: token)
        guard response.status == .created else { throw UnexpectedResponse(response) }
        return try response.json()
    }

    /// Creates a run of one task `build` and drives it as runner host-a: claim, running, then
    /// succeeded (exit 0) or failed (exit 2). Returns the run and task ids.
    @discardableResult
    func driveOneTaskRun(succeed: Bool = true, extra: String = "") async throws -> (runID: String, taskID: String) {
        let runID = try await createRun(runBody(tasks: "[\(taskJSON("build"))]", extra: extra))["id"]?.asString ?? ""
        let taskID = try await claimTaskID()
        try await reportOK(taskID, reportBody("running"))
        if succeed {
            try await reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
        } else {
            try await reportOK(taskID, reportBody("failed", #""exit_code":2,"error":{"code":"exit_code","message":"exit status 2"}"#))
        }
        return (runID, taskID)
    }

    /// Every item of the subscription's delivery log, oldest event first.
    func deliveryLog(_ webhookID: String, token: String? = nil) async throws -> [JSONValue] {
        let items = try await getJSON("/v1/webhooks/\(webhookID)/deliveries?limit=500", token: token)["items"]?.asArray ?? []
        return items.sorted { ($0["seq"]?.asInt ?? 0, $0["id"]?.asString ?? "") < ($1["seq"]?.asInt ?? 0, $1["id"]?.asString ?? "") }
    }

    /// Polls the delivery log until `done` holds or `timeout` passes; the log either way.
    func waitForDeliveryLog(
        _ webhookID: String, timeout: Duration = .seconds(10), until done: ([JSONValue]) -> Bool
    ) async throws -> [JSONValue] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let log = try await deliveryLog(webhookID)
            if done(log) || ContinuousClock.now > deadline { return log }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The run's whole timeline.
    func timeline(_ runID: String) async throws -> [JSONValue] {
        try await getJSON("/v1/runs/\(runID)/events?limit=500")["events"]?.asArray ?? []
    }
}

extension JSONValue {
    /// `status` of a delivery-log item.
    var deliveryStatus: String? { self["status"]?.asString }
    /// `attempts` of a delivery-log item.
    var attempts: [JSONValue] { self["attempts"]?.asArray ?? [] }
}

/// Milliseconds of an API timestamp.
func milliseconds(_ text: String?) -> Int64? { text.flatMap(Timestamp.init(iso8601:))?.milliseconds }
