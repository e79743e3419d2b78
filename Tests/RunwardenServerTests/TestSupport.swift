import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RunwardenCore
import RunwardenServer
import RunwardenTestSupport
import Testing

// MARK: - Apps on a real SQLite file

/// A fresh directory under the system temp directory, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        path = try TestScratch.directory("server").path
    }

    var databasePath: String { path + "/runwarden.sqlite" }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Client token and runner token of the suites that configure tokens.
enum Tokens {
    static let client = "c-secret"
    static let runner = "r-secret"
}

let quietLogger: Logger = {
    var logger = Logger(label: "runwarden-test")
    logger.logLevel = .error
    return logger
}()

/// A test configuration: loopback, any port, the given SQLite file.
func testConfiguration(database: String, _ configure: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
    var configuration = ServerConfiguration()
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.database = database
    configuration.reaperInterval = nil  // the reaper's own tests drive it with a manual clock
    configuration.dispatchWebhooks = false  // runs in these suites name hosts that must not be contacted
    configure(&configuration)
    return configuration
}

/// Builds the real application on `database` and runs `body` against it.
func withApp<Value: Sendable>(
    database: String, setup: TestingSetup = .router, _ configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    let app = try await buildApplication(testConfiguration(database: database, configure), logger: quietLogger)
    return try await app.test(setup, body)
}

/// Builds the real application on a SQLite file in a fresh temp directory and runs `body` against it.
func withApp<Value: Sendable>(
    setup: TestingSetup = .router, _ configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    return try await withApp(database: directory.databasePath, setup: setup, configure, body)
}

/// An app with both tokens configured (`Tokens.client`, `Tokens.runner`).
func withTokenApp<Value: Sendable>(
    _ body: @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    try await withApp({ configuration in
        configuration.clientToken = Tokens.client
        configuration.runnerToken = Tokens.runner
    }, body)
}

// MARK: - Requests

extension TestClientProtocol {
    /// Sends one request; `json` is sent as the body, `token` as a bearer token.
    func send(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, token: String? = nil, headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        if json != nil { fields[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) })
    }

    /// Creates a run and returns its snapshot; fails the test unless the answer is `202`.
    func createRun(_ body: String, token: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let response = try await send(.post, "/v1/runs", json: body, token: token)
        #expect(response.status == .accepted, "create answered \(response.status): \(response.text)", sourceLocation: sourceLocation)
        return try response.json()
    }

    /// Claims as `runner`: the whole `200` answer (`task`, `lease_s`), or nil on `204`.
    func claim(
        runner: String = "host-a", labels: [String] = [], wait: String? = nil, token: String? = nil
    ) async throws -> JSONValue? {
        let labelList = labels.map { "\"\($0)\"" }.joined(separator: ",")
        let query = wait.map { "?wait=\($0)" } ?? ""
        let response = try await send(.post, "/v1/runners/\(runner)/claim\(query)", json: #"{"labels":[\#(labelList)]}"#, token: token)
        if response.status == .noContent { return nil }
        guard response.status == .ok else { throw UnexpectedResponse(response) }
        return try response.json()
    }

    /// Claims and returns the claimed task's id; throws when nothing is claimable.
    func claimTaskID(runner: String = "host-a", labels: [String] = [], token: String? = nil) async throws -> String {
        guard let answer = try await claim(runner: runner, labels: labels, token: token),
            let id = answer["task"]?["id"]?.asString
        else { throw UnexpectedResponse(status: .noContent, text: "nothing to claim") }
        return id
    }

    /// Sends a status report; the raw response.
    func report(
        _ taskID: String, _ body: String, runner: String? = nil, token: String? = nil
    ) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let runner { headers[.xRunnerName] = runner }
        return try await send(.post, "/v1/tasks/\(taskID)/status", json: body, token: token, headers: headers)
    }

    /// Sends a status report that must be answered `200`; returns the answer.
    @discardableResult
    func reportOK(_ taskID: String, _ body: String, runner: String? = nil, token: String? = nil) async throws -> JSONValue {
        let response = try await report(taskID, body, runner: runner, token: token)
        guard response.status == .ok else { throw UnexpectedResponse(response) }
        return try response.json()
    }

    /// `GET /v1/runs/{id}`, which must answer `200`.
    func snapshot(_ runID: String, query: String = "", token: String? = nil) async throws -> JSONValue {
        let response = try await send(.get, "/v1/runs/\(runID)\(query)", token: token)
        guard response.status == .ok else { throw UnexpectedResponse(response) }
        return try response.json()
    }

    /// Any `GET` that must answer `200`, decoded.
    func getJSON(_ uri: String, token: String? = nil) async throws -> JSONValue {
        let response = try await send(.get, uri, token: token)
        guard response.status == .ok else { throw UnexpectedResponse(response) }
        return try response.json()
    }
}

extension HTTPField.Name {
    static let xRunnerName = Self("X-Runner-Name")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let xRequestID = Self("X-Request-Id")!
}

/// A response a helper did not expect, with its body for the failure message.
struct UnexpectedResponse: Error, CustomStringConvertible {
    let status: HTTPResponse.Status
    let text: String

    init(_ response: TestResponse) {
        status = response.status
        text = response.text
    }

    init(status: HTTPResponse.Status, text: String) {
        self.status = status
        self.text = text
    }

    var description: String { "unexpected \(status): \(text)" }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func json() throws -> JSONValue { try JSONValue.parse(Data(body.readableBytesView)) }

    /// The SPEC §2 error envelope's `error` object, or nil when the body is not one.
    func errorObject() throws -> JSONValue? { try json()["error"] }

    /// `error.code` of the envelope.
    func errorCode() throws -> String? { try errorObject()?["code"]?.asString }
}

// MARK: - Reading JSON

extension JSONValue {
    var asString: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var asInt: Int? {
        if case .int(let value) = self { return Int(value) }
        return nil
    }

    var asBool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    var asArray: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    var isNull: Bool { self == .null }

    /// The snapshot's task named `name`.
    func task(named name: String) -> JSONValue? {
        self["tasks"]?.asArray?.first { $0["name"]?.asString == name }
    }

    /// The `type` of every event in an events page.
    var eventTypes: [String] { self["events"]?.asArray?.compactMap { $0["type"]?.asString } ?? [] }
}

/// Checks the SPEC §2 error envelope: `{"error": {"code", "message", "request_id"}}` with the
/// given code, and the request id also sent as `X-Request-Id`.
func expectError(
    _ response: TestResponse, _ status: HTTPResponse.Status, _ code: String, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    #expect(response.status == status, "body: \(response.text)", sourceLocation: sourceLocation)
    let error = try response.errorObject()
    #expect(error?["code"]?.asString == code, "body: \(response.text)", sourceLocation: sourceLocation)
    let message = error?["message"]?.asString ?? ""
    #expect(!message.isEmpty, "error.message must be a non-empty string", sourceLocation: sourceLocation)
    let requestID = error?["request_id"]?.asString ?? ""
    #expect(!requestID.isEmpty, "error.request_id must be a non-empty string", sourceLocation: sourceLocation)
    #expect(response.headers[.xRequestID] == requestID, sourceLocation: sourceLocation)
}

// MARK: - Bodies

/// A create body with the given task list (JSON text).
func runBody(workflow: String = "deploy", tasks: String, extra: String = "") -> String {
    #"{"workflow":"\#(workflow)","tasks":\#(tasks)\#(extra.isEmpty ? "" : "," + extra)}"#
}

/// One argv task named `name`.
func taskJSON(_ name: String, extra: String = "") -> String {
    #"{"name":"\#(name)","command":["make","\#(name)"]\#(extra.isEmpty ? "" : "," + extra)}"#
}

/// A run of one task `build`.
let oneTaskRun = runBody(tasks: "[\(taskJSON("build"))]")

/// A status report with the given status and extra members.
func reportBody(_ status: String, _ extra: String = "") -> String {
    #"{"status":"\#(status)"\#(extra.isEmpty ? "" : "," + extra)}"#
}

/// Waits until `count` long-polls or streams are parked in the server's ChangeHub, read from
/// `/metrics` (`runwarden_waiters`; the hub itself is inside the app), so that the change a
/// test makes next is one they are already waiting for. The webhook dispatcher's own waiter
/// (topic `deliveries`) is not counted. Throws after `limit`.
func waitUntilParked(_ client: any TestClientProtocol, count: Int = 1, within limit: Duration = .seconds(10)) async throws {
    let deadline = ContinuousClock.now + limit
    var parked = 0.0
    while ContinuousClock.now < deadline {
        parked = try await scrapeMetrics(client)
            .filter { $0.key.hasPrefix("runwarden_waiters{") && $0.key != #"runwarden_waiters{topic="deliveries"}"# }
            .values.reduce(0, +)
        if parked >= Double(count) { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw WaitTimedOut(description: "\(Int(parked)) of \(count) long-polls parked within \(limit)")
}

struct WaitTimedOut: Error, CustomStringConvertible {
    let description: String
}

/// The samples of one `/metrics` scrape, by series (`name{labels}`).
func scrapeMetrics(_ client: any TestClientProtocol) async throws -> [String: Double] {
    let text = try await client.send(.get, "/metrics").text
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        samples[String(line[..<space])] = value
    }
    return samples
}

/// Seconds since `start`.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}
