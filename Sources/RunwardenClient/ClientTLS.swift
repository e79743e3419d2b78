import AsyncHTTPClient
import Foundation
import NIOSSL
import Synchronization

/// `--ca-file` (SPEC §6): HTTPS to a server whose certificate a private CA signed.
extension RunwardenClient {
    /// The HTTP client for `caFile`: `failoverHTTP` without one; else one that trusts only the
    /// certificates in that PEM file (as `curl --cacert` does). Made once per file and kept for
    /// the life of the process, like `failoverHTTP` — an HTTPClient must never be dropped
    /// without being shut down.
    public static func http(caFile: String?) throws -> HTTPClient {
        guard let caFile else { return failoverHTTP }
        let configuration = try configuration(caFile: caFile)
        return clientsByCAFile.withLock { clients in
            if let client = clients[caFile] { return client }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[caFile] = client
            return client
        }
    }

    private static let clientsByCAFile = Mutex<[String: HTTPClient]>([:])

    /// `failoverHTTP`'s configuration, trusting the CA certificates in `caFile`. A file that
    /// cannot be read or holds no PEM certificate is an error now, not a TLS failure on every
    /// request later.
    public static func configuration(caFile: String) throws -> HTTPClient.Configuration {
        guard FileManager.default.isReadableFile(atPath: caFile) else { throw CAFileError(path: caFile, reason: "cannot read it") }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw CAFileError(path: caFile, reason: "it is not a PEM certificate file (\(error))")
        }
        guard !certificates.isEmpty else { throw CAFileError(path: caFile, reason: "it holds no PEM certificate") }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(certificates)
        var configuration = failoverConfiguration
        configuration.tlsConfiguration = tls
        return configuration
    }
}

public struct CAFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "--ca-file \(path): \(reason)" }
}
