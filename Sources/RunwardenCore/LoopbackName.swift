#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a host name or address can only mean this machine: `localhost` and its subdomains
/// (RFC 6761 §6.3), `127.0.0.0/8`, `::1` and `::ffff:127.x.x.x`. Addresses are parsed, not
/// matched by prefix: `127.evil.example` is a DNS name anyone can point anywhere.
public enum LoopbackName {
    /// `name` is a bare host (`localhost`, `127.0.0.1`, `::1` or `[::1]`), without a port.
    public static func matches(_ name: String) -> Bool {
        var host = name.lowercased()
        if host.hasSuffix(".") { host.removeLast() }  // the absolute form of a DNS name
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return withUnsafeBytes(of: v4) { $0[0] == 127 }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        return withUnsafeBytes(of: v6) { bytes in
            let isOne = bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1
            let isMappedLoopback = bytes.prefix(10).allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127
            return isOne || isMappedLoopback
        }
    }

    /// The host part of a `Host` header value (`name`, `name:port`, `[v6]` or `[v6]:port`);
    /// nil when it is malformed.
    public static func hostOfHeader(_ value: String) -> String? {
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { return nil }
            let rest = value[value.index(after: close)...]
            guard rest.isEmpty || (rest.first == ":" && rest.dropFirst().allSatisfy(\.isASCIIDigit)) else { return nil }
            return String(value[...close])
        }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.first, !name.isEmpty else { return nil }
        if parts.count == 2, !parts[1].allSatisfy(\.isASCIIDigit) { return nil }
        return String(name)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
