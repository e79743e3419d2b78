import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where webhooks may be sent (SPEC §6): addresses in a denied network are refused unless an
/// allowed network also holds them. Checked on a URL's literal address when a subscription or
/// run is created, and on the address actually connected to when a delivery is attempted.
public struct EgressPolicy: Sendable, Equatable {
    /// Always denied unless allowed: link-local (cloud metadata endpoints live there),
    /// unspecified and multicast space.
    public static let defaultDeny = ["169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128", "224.0.0.0/4", "ff00::/8"]
        .compactMap(IPNetwork.init(cidr:))
    public static let standard = EgressPolicy()

    public var deny: [IPNetwork]
    public var allow: [IPNetwork]

    /// `deny` is added to the default list, never instead of it; `allow` opens exceptions.
    public init(deny: [IPNetwork] = [], allow: [IPNetwork] = []) {
        self.deny = Self.defaultDeny + deny
        self.allow = allow
    }

    public func permits(_ address: IPAddress) -> Bool {
        // `::ffff:169.254.169.254` reaches 169.254.169.254: judge it as that.
        let candidates = [address, address.unmapped].compactMap { $0 }
        if candidates.contains(where: { candidate in allow.contains { $0.contains(candidate) } }) { return true }
        return !candidates.contains { candidate in deny.contains { $0.contains(candidate) } }
    }

    /// Why a webhook URL is refused; nil when its host is a name (judged when resolved) or a
    /// permitted address.
    public func problem(withURL text: String) -> String? {
        guard let host = URLRules.httpURL(text)?.host, let address = IPAddress(urlHost: host), !permits(address) else { return nil }
        return "points at \(address), which the server's webhook egress rules deny (--webhook-deny, --webhook-allow)"
    }

    /// `CIDR,CIDR,...` as given to `--webhook-deny` / `--webhook-allow`; nil when any part is not a network.
    public static func networks(_ text: String) -> [IPNetwork]? {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let networks = parts.compactMap(IPNetwork.init(cidr:))
        return networks.count == parts.count ? networks : nil
    }
}

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// A strict textual address (`inet_pton`).
    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self.bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// A URL's host when it is an address — in brackets for IPv6, and for IPv4 in every form
    /// the resolver also takes (`inet_aton`: `2852039166`, `0xA9.0xFE.0xA9.0xFE`, `169.254.43518`).
    public init?(urlHost host: String) {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let strict = IPAddress(bare) {
            self = strict
            return
        }
        var v4 = in_addr()
        guard bare.first.map({ $0.isNumber }) == true, inet_aton(bare, &v4) != 0 else { return nil }
        self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:a.b.c.d`); nil otherwise.
    public var unmapped: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        return IPAddress(bytes: Array(bytes[12...]))
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let written = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return bytes.map(String.init).joined(separator: ".") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A network such as `10.0.0.0/8` or `fe80::/10` (an address alone is a network of one).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(cidr text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isNumber), let length = Int(parts[1]), (0...bits).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = bits
        }
        self.address = address
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for (mine, theirs) in zip(address.bytes, candidate.bytes) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xff : ~(0xff >> UInt8(remaining))
            if mine & mask != theirs & mask { return false }
            remaining -= 8
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }
}
