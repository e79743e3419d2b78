import AsyncHTTPClient
import Foundation
import NIOPosix
import RunwardenCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A delivery's destination resolved only to addresses the egress policy denies: no
/// connection is made, and the attempt is retried like a network error.
struct DestinationNotAllowed: Error, CustomStringConvertible {
    var description: String { "destination_not_allowed" }
}

/// The host name did not resolve.
struct ResolutionFailed: Error, CustomStringConvertible {
    let host: String
    let code: Int32
    var description: String { "cannot resolve \(host): \(String(cString: gai_strerror(code)))" }
}

/// HTTP clients that connect only to addresses the egress policy permits (SPEC §6).
///
/// AsyncHTTPClient resolves names itself and has no hook to veto an address, so the name is
/// resolved here, every address is checked, and the request goes through a client whose
/// `dnsOverride` pins the name to the checked address: what is checked is what is connected
/// to (a rebinding DNS answer cannot slip in between), while the `Host` header, TLS SNI and
/// certificate checks stay on the name. One client per (name, address), kept for reuse and
/// bounded; a literal address needs no resolving and goes through the shared client.
actor WebhookEgress {
    private let policy: EgressPolicy
    private let configuration: HTTPClient.Configuration
    private let direct: HTTPClient
    private var pinned: [String: HTTPClient] = [:]
    private var recentlyUsed: [String] = []
    static let maximumPinnedClients = 64

    init(policy: EgressPolicy, configuration: HTTPClient.Configuration) {
        self.policy = policy
        self.configuration = configuration
        direct = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The client to send `url` with, after resolving and checking its host.
    func client(for url: String) async throws -> HTTPClient {
        guard let host = URL(string: url)?.host, !host.isEmpty else { return direct }  // the request itself will fail
        if let literal = IPAddress(urlHost: host) {
            guard policy.permits(literal) else { throw DestinationNotAllowed() }
            return direct
        }
        let addresses = try await Self.resolve(host)
        guard let address = addresses.first(where: policy.permits) else { throw DestinationNotAllowed() }
        return pinnedClient(host: host, address: address)
    }

    func shutdown() async {
        for client in pinned.values + [direct] { try? await client.shutdown() }
        pinned = [:]
    }

    private func pinnedClient(host: String, address: IPAddress) -> HTTPClient {
        let key = "\(host) \(address)"
        recentlyUsed.removeAll { $0 == key }
        recentlyUsed.append(key)
        if let client = pinned[key] { return client }
        if recentlyUsed.count > Self.maximumPinnedClients {
            let evicted = recentlyUsed.removeFirst()
            if let old = pinned.removeValue(forKey: evicted) {
                // An attempt still using it ends with an error and is retried.
                Task { try? await old.shutdown() }
            }
        }
        var configuration = configuration
        configuration.dnsOverride = [host: address.description]
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        pinned[key] = client
        return client
    }

    /// Every address `host` resolves to, via getaddrinfo on NIO's blocking-IO pool (never on a
    /// cooperative thread).
    static func resolve(_ host: String) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0 else { throw ResolutionFailed(host: host, code: status) }
            defer { freeaddrinfo(list) }
            var addresses: [IPAddress] = []
            var entry = list
            while let current = entry {
                if let socketAddress = current.pointee.ai_addr {
                    switch Int32(socketAddress.pointee.sa_family) {
                    case AF_INET:
                        socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                            var raw = pointer.pointee.sin_addr
                            if let address = IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) }) { addresses.append(address) }
                        }
                    case AF_INET6:
                        socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                            var raw = pointer.pointee.sin6_addr
                            if let address = IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) }) { addresses.append(address) }
                        }
                    default: break
                    }
                }
                entry = current.pointee.ai_next
            }
            return addresses
        }
    }
}
