import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The load generator's HTTP/1.1 client: one AsyncHTTPClient whose pool may hold as many
/// keep-alive connections to the server as the load has concurrent requests.
struct BenchClient: Sendable {
    let http: HTTPClient
    let base: String

    static func make(connections: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(idleTimeout: .minutes(10), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        configuration.timeout.connect = .seconds(30)
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    struct Answer: Sendable {
        var status: Int
        var body: ByteBuffer
        var headers: HTTPHeaders = [:]

        var text: String { String(buffer: body) }

        func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
            try BenchClient.decoder.decode(type, from: Data(body.readableBytesView))
        }
    }

    static let decoder = JSONDecoder()

    func send(
        _ method: HTTPMethod, _ path: String, body: String? = nil, runner: String? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let runner { request.headers.add(name: "X-Runner-Name", value: runner) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await http.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), body: bytes, headers: response.headers)
    }

    /// A setup call outside the measurements: retried on 5xx and transport errors.
    func setup(_ method: HTTPMethod, _ path: String, body: String? = nil, runner: String? = nil) async throws -> Answer {
        var last = ""
        for attempt in 0..<20 {
            do {
                let answer = try await send(method, path, body: body, runner: runner)
                if answer.status < 500 { return answer }
                last = "HTTP \(answer.status): \(answer.text.prefix(200))"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100 * (attempt + 1)))
        }
        throw BenchError("\(method) \(path) kept failing: \(last)")
    }
}

// MARK: - The answers the bench reads

// Only the fields the bench looks at (not the full wire types of RunwardenCore/Wire): decoding
// is the load generator's CPU, which the figures should spend on sending requests.

struct Created: Decodable { let id: String; let version: Int }
struct RunSnapshot: Decodable {
    struct Progress: Decodable { let total: Int; let succeeded: Int }
    let id: String
    let status: String
    let version: Int
    let progress: Progress?
}
struct ClaimAnswer: Decodable {
    struct Task: Decodable { let id: String; let run_id: String; let attempt: Int }
    let task: Task
}
struct ReportAnswer: Decodable { let applied: Bool }
struct WebhookCreated: Decodable { let id: String }
struct EventPage: Decodable {
    struct Event: Decodable { let seq: Int }
    let events: [Event]
}

/// Request bodies, fixed strings (the client's JSON encoding is not what we measure).
enum Bodies {
    static let oneTaskRun = #"{"workflow":"bench-lifecycle","tasks":[{"name":"t","command":["true"]}]}"#
    static let claim = #"{"labels":[]}"#
    static func running(attempt: Int) -> String { #"{"status":"running","attempt":\#(attempt)}"# }
    static func succeeded(attempt: Int) -> String { #"{"status":"succeeded","attempt":\#(attempt),"exit_code":0}"# }
}

func describe(_ error: any Error) -> String {
    if let error = error as? HTTPClientError { return "HTTPClientError.\(error)" }
    return String(describing: type(of: error))
}
