import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import RunwardenServer
import ServiceLifecycle

/// A TCP connection that sends exactly the bytes a test writes — torn request heads, forged
/// `Host` headers — and reads whatever comes back, including the server closing it.
final class RawConnection: Sendable {
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private let received = Received()
    private let reader: Task<Void, Never>

    /// What has arrived so far, and whether the server has closed the connection.
    private actor Received {
        var text = ""
        var closed = false
        var consumed = 0
        func append(_ more: String) { text += more }
        func close() { closed = true }
        func consume(upTo end: Int) { consumed = end }
    }

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
        let received = received
        reader = Task {
            try? await channel.executeThenClose { inbound, _ in
                for try await buffer in inbound { await received.append(String(buffer: buffer)) }
            }
            await received.close()
        }
    }

    static func open(port: Int) async throws -> RawConnection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return RawConnection(channel: channel)
    }

    func send(_ text: String) async throws {
        try await channel.channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Polls (every 10 ms) until `done` holds for what arrived after the last response read, or `limit` passes.
    private func wait(limit: Duration, until done: @Sendable (Substring, Bool) -> Bool) async throws -> (Substring, Bool) {
        let deadline = ContinuousClock.now + limit
        while true {
            let (text, closed, consumed) = await (received.text, received.closed, received.consumed)
            let fresh = text.utf8.dropFirst(consumed)
            let unread = Substring(fresh)
            if done(unread, closed) || ContinuousClock.now >= deadline { return (unread, closed) }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Everything received until the server closes the connection or `limit` passes; whether it closed.
    func readUntilClosed(limit: Duration) async throws -> (text: String, closed: Bool) {
        let (text, closed) = try await wait(limit: limit) { _, closed in closed }
        return (String(text), closed)
    }

    /// The next HTTP/1.1 response (head and Content-Length body), waited for up to `limit`.
    func readResponse(limit: Duration = .seconds(10)) async throws -> String {
        let (text, _) = try await wait(limit: limit) { text, closed in closed || Self.completeResponseLength(text) != nil }
        let length = Self.completeResponseLength(text) ?? text.utf8.count
        let response = String(Substring(text.utf8.prefix(length)))
        await received.consume(upTo: await received.consumed + length)
        return response
    }

    /// The byte length of the complete response at the start of `text`; nil while incomplete.
    private static func completeResponseLength(_ text: Substring) -> Int? {
        guard let headEnd = text.range(of: "\r\n\r\n") else { return nil }
        let headLength = text[..<headEnd.upperBound].utf8.count
        let bodyLength =
            text[..<headEnd.lowerBound].lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        return text.utf8.count >= headLength + bodyLength ? headLength + bodyLength : nil
    }

    func close() async {
        try? await channel.channel.close()
        reader.cancel()
    }
}

/// The real application listening on a loopback port while `body` runs.
func withLiveServer<Value: Sendable>(
    _ configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @Sendable (_ port: Int) async throws -> Value
) async throws -> Value {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let ports = AsyncStream.makeStream(of: Int.self)
    let app = try await buildApplication(testConfiguration(database: directory.databasePath, configure), logger: quietLogger) { port in
        ports.continuation.yield(port)
    }
    let services = ServiceGroup(configuration: .init(services: [app], logger: quietLogger))
    return try await withThrowingTaskGroup(of: Value?.self) { group in
        group.addTask {
            try await services.run()
            return nil
        }
        var listening = ports.stream.makeAsyncIterator()
        guard let port = await listening.next() else { throw CancellationError() }
        do {
            let value = try await body(port)
            await services.triggerGracefulShutdown()
            return value
        } catch {
            await services.triggerGracefulShutdown()
            throw error
        }
    }
}
