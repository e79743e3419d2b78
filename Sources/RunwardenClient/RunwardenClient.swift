import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunwardenCore
import Synchronization

/// A typed HTTP client of the Runwarden API (SPEC §2), shared by the CLI and the runner.
///
/// With several server URLs it fails over: a request that cannot reach one server (connection
/// refused, timeout) is tried on the next. Answers from a server — even errors — are final.
public struct RunwardenClient: Sendable {
    public let servers: [String]
    public let token: String?
    let http: HTTPClient
    /// The server that answered last: requests start there, so a client that failed over
    /// stays on the node that works instead of knocking on the dead one first every time.
    private let preferred = Preferred()

    public init(servers: [String], token: String?, http: HTTPClient = RunwardenClient.failoverHTTP) {
        self.servers = servers.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.token = token
        self.http = http
    }

    /// The HTTP client every `RunwardenClient` shares unless given one. Lives as long as the
    /// process, like `HTTPClient.shared`.
    public static let failoverHTTP = HTTPClient(eventLoopGroupProvider: .singleton, configuration: failoverConfiguration)

    /// A refused connection fails the request at once (AsyncHTTPClient's default would keep
    /// reconnecting until the request's deadline), so a client with several servers moves on to
    /// the next node within milliseconds of one dying. Up to 256 connections to a server (not
    /// the default 8): `runwarden logs -f` long-polls every running task's log at once, and a
    /// long-poll queued behind eight others would hold its lines back for their whole wait.
    static var failoverConfiguration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        configuration.timeout.connect = .seconds(3)
        return configuration
    }

    /// The server requests go to first: the one that answered last.
    public var currentServer: String { servers.isEmpty ? "" : servers[preferred.value % servers.count] }

    final class Preferred: Sendable {
        private let index = Mutex(0)
        var value: Int { index.withLock { $0 } }
        func set(_ value: Int) { index.withLock { $0 = value } }
    }

    public struct Answer: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: Data
    }

    /// Sends one request; throws `ClientError.server` for an error envelope and
    /// `ClientError.unreachable` when no server answered.
    public func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil,
        bytes: ByteBuffer? = nil, headers extra: [(String, String)] = [], timeout: Duration = .seconds(30)
    ) async throws -> Answer {
        var lastFailure = "no server configured"
        let start = preferred.value
        for offset in servers.indices {
            let index = (start + offset) % servers.count
            let server = servers[index]
            var request = HTTPClientRequest(url: server + path + Self.encode(query))
            request.method = method
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            for (name, value) in extra { request.headers.add(name: name, value: value) }
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body.encoded()))
            } else if let bytes {
                request.headers.add(name: "Content-Type", value: "application/octet-stream")
                request.body = .bytes(bytes)
            }
            let response: HTTPClientResponse
            let data: Data
            do {
                response = try await http.execute(request, timeout: .seconds(Int64(ServerValue.clamp(Int(timeout.components.seconds), 0...ServerValue.longestWait))))
                data = Data((try await response.body.collect(upTo: 64 << 20)).readableBytesView)
            } catch {
                lastFailure = "\(server): \(Self.describe(error))"
                continue
            }
            preferred.set(index)
            let answer = Answer(status: Int(response.status.code), headers: response.headers, body: data)
            if answer.status >= 400 { throw ClientError.server(status: answer.status, envelope: ErrorEnvelope.parse(data, status: answer.status)) }
            return answer
        }
        throw ClientError.unreachable(lastFailure)
    }

    func decode<Value: Decodable>(_ type: Value.Type, _ answer: Answer) throws -> Value {
        do {
            return try Self.decoder.decode(type, from: answer.body)
        } catch {
            throw ClientError.invalidResponse("could not read the server's answer as \(type): \(error)")
        }
    }

    /// The wire types of `RunwardenCore/Wire` name their JSON keys themselves.
    static let decoder = JSONDecoder()

    static func encode(_ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return "" }
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+")
        return "?" + query.map { name, value in
            name + "=" + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)
        }.joined(separator: "&")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return String(describing: error)
    }

    static func pathSegment(_ text: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

extension ErrorEnvelope {
    /// The envelope of an error answer; a body that is not one (a proxy's error page) becomes
    /// an `unrecognized` error that names the HTTP status.
    static func parse(_ data: Data, status: Int) -> ErrorEnvelope.Body {
        (try? RunwardenClient.decoder.decode(ErrorEnvelope.self, from: data))?.error
            ?? ErrorEnvelope.Body(
                code: .unrecognized, message: "the server answered HTTP \(status)", requestID: nil, details: nil)
    }
}

public enum ClientError: Error, CustomStringConvertible, Sendable {
    /// The server answered with an error envelope.
    case server(status: Int, envelope: ErrorEnvelope.Body)
    /// No server could be reached.
    case unreachable(String)
    /// The server answered something this client cannot read.
    case invalidResponse(String)

    public var description: String {
        switch self {
        case .server(let status, let envelope):
            let details = (envelope.details ?? []).map { "\($0.field): \($0.message)" }
            let detailText = details.isEmpty ? "" : " (" + details.joined(separator: "; ") + ")"
            return "\(envelope.code.rawValue) (HTTP \(status)): \(envelope.message)\(detailText)"
        case .unreachable(let reason): return "cannot reach the server: \(reason)"
        case .invalidResponse(let reason): return reason
        }
    }

    /// Worth trying again later: the server was unreachable or failed on its side.
    public var isTransient: Bool {
        switch self {
        case .unreachable: true
        case .server(let status, _): status >= 500 || status == 408 || status == 429
        case .invalidResponse: false
        }
    }
}
