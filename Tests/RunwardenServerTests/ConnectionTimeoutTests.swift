import Foundation
import Testing

@testable import RunwardenServer

/// `--header-timeout` and `--idle-timeout` (SPEC §6) over real sockets: a client that trickles
/// a request head (slowloris) loses its connection; a client that is merely idle between
/// requests keeps it until the idle timeout.
@Suite("Connection timeouts")
struct ConnectionTimeoutTests {
    @Test("a request head trickled a byte at a time is cut off within the header timeout")
    func slowlorisIsClosed() async throws {
        try await withLiveServer({ $0.headerTimeout = .seconds(1) }) { port in
            let connection = try await RawConnection.open(port: port)
            let started = ContinuousClock.now
            let trickle = Task {
                // One byte every 200 ms: each would reset a plain read-idle timer.
                for byte in "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".map(String.init) {
                    try await connection.send(byte)
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            defer { trickle.cancel() }
            let (text, closed) = try await connection.readUntilClosed(limit: .seconds(8))
            let elapsed = started.duration(to: .now)
            #expect(closed, "the connection is still open after 8 s")
            #expect(text.isEmpty, "answered a head that never ended: \(text)")
            #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(5), "closed after \(elapsed)")
        }
    }

    @Test("a connection that never sends a byte is closed within the header timeout")
    func silentConnectionIsClosed() async throws {
        try await withLiveServer({ $0.headerTimeout = .seconds(1) }) { port in
            let connection = try await RawConnection.open(port: port)
            let (_, closed) = try await connection.readUntilClosed(limit: .seconds(6))
            #expect(closed)
        }
    }

    @Test("a kept-alive connection idle for longer than the header timeout still serves the next request, until the idle timeout")
    func idleKeepAliveLastsUntilIdleTimeout() async throws {
        try await withLiveServer({
            $0.headerTimeout = .milliseconds(500)
            $0.idleTimeout = .seconds(3)
        }) { port in
            let connection = try await RawConnection.open(port: port)
            let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            try await connection.send(request)
            #expect(try await connection.readResponse().hasPrefix("HTTP/1.1 200"))
            try await Task.sleep(for: .milliseconds(1200))  // idle, past the header timeout: allowed
            try await connection.send(request)
            #expect(try await connection.readResponse().hasPrefix("HTTP/1.1 200"))
            let started = ContinuousClock.now
            let (_, closed) = try await connection.readUntilClosed(limit: .seconds(10))
            #expect(closed, "an idle connection outlived the idle timeout")
            #expect(started.duration(to: .now) >= .seconds(2))
        }
    }
}
