import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct LoopbackSocketError: Error, CustomStringConvertible {
    public let description: String
}

/// A TCP socket bound to 127.0.0.1 on a port the kernel picks (port 0), and that port, read
/// back with getsockname. The caller listens on it or closes it.
public func bindLoopbackSocket() throws -> (descriptor: Int32, port: Int) {
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw LoopbackSocketError(description: "socket() failed: errno \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    let named = bound == 0 ? withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    } : -1
    guard named == 0 else {
        let code = errno
        close(descriptor)
        throw LoopbackSocketError(description: "bind()/getsockname() on 127.0.0.1 failed: errno \(code)")
    }
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (bound, read, closed). Only for
/// what must know a port before anything listens on it — a URL that must stay dead, or one a
/// receiver takes later; a server that can be started on port 0 should report its own.
public func freeLoopbackPort() throws -> Int {
    let (descriptor, port) = try bindLoopbackSocket()
    close(descriptor)
    return port
}
