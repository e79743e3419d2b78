import Foundation
import RunwardenTestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A webhook receiver on 127.0.0.1 that misbehaves on purpose, on raw sockets so it can do
/// what no HTTP server library would: trickle a body forever, accept and never answer, or
/// never accept at all. It counts the connections it accepted and the request heads it read.
final class HostileReceiver: @unchecked Sendable {
    enum Behaviour: Sendable {
        /// Reads the request, then answers 200 with a chunked body of one byte every 100 ms, forever.
        case trickleBody
        /// Reads the request, then sends a response head one byte every 100 ms, forever.
        case trickleHead
        /// Accepts, reads, never answers.
        case silent
        /// Never accepts: listens with a backlog of 0 and never calls accept().
        case neverAccepts
    }

    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var accepted = 0
    private var heads = 0
    private var stopped = false
    private var descriptors: [Int32] = []

    init(_ behaviour: Behaviour) throws {
        let (listener, port) = try bindLoopbackSocket()
        guard listen(listener, behaviour == .neverAccepts ? 0 : 64) == 0 else {
            close(listener)
            throw Failure("listen failed: errno \(errno)")
        }
        self.listener = listener
        self.port = port
        // With a backlog of 0 and no accept(), Linux answers no handshake: SYNs are dropped
        // and the client's connect waits out its own timeout.
        if behaviour == .neverAccepts { return }
        let thread = Thread { [self] in acceptLoop(behaviour) }
        thread.start()
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    func url(_ path: String = "/hook") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Connections accepted so far.
    var connections: Int { lock.withLock { accepted } }
    /// Request heads read so far.
    var requests: Int { lock.withLock { heads } }

    func stop() {
        let open: [Int32] = lock.withLock {
            guard !stopped else { return [] }
            stopped = true
            return descriptors + [listener]
        }
        for descriptor in open {
            shutdown(descriptor, Int32(SHUT_RDWR))
            close(descriptor)
        }
    }

    deinit { stop() }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop(_ behaviour: Behaviour) {
        while !isStopped {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            lock.withLock {
                accepted += 1
                descriptors.append(connection)
            }
            Thread { [self] in serve(connection, behaviour) }.start()
        }
    }

    private func serve(_ connection: Int32, _ behaviour: Behaviour) {
        guard readHead(connection) else { return }
        lock.withLock { heads += 1 }
        switch behaviour {
        case .trickleBody:
            guard write(connection, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") else { return }
            while !isStopped, write(connection, "1\r\nx\r\n") { usleep(100_000) }
        case .trickleHead:
            for byte in "HTTP/1.1 200 OK\r\nX-Slow: " where !isStopped {
                guard write(connection, String(byte)) else { return }
                usleep(100_000)
            }
            while !isStopped, write(connection, "a") { usleep(100_000) }
        case .silent, .neverAccepts:
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !isStopped, recv(connection, &buffer, buffer.count, 0) > 0 {}
        }
    }

    /// Reads up to the end of the request head (the body is left unread: nothing here needs it).
    private func readHead(_ connection: Int32) -> Bool {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !isStopped {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return false }
            received += buffer[0..<count]
            if received.count >= 4, String(decoding: received, as: UTF8.self).contains("\r\n\r\n") { return true }
        }
        return false
    }

    private func write(_ connection: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}
