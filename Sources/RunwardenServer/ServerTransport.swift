import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOCore

/// How connections are served: HTTP/1.1 with the header and idle timeouts, inside TLS when
/// `--tls-cert`/`--tls-key` are given.
enum ServerTransport {
    static func builder(_ configuration: ServerConfiguration) throws -> HTTPServerBuilder {
        let headerTimeout = configuration.headerTimeout
        let http = HTTPServerBuilder.http1(
            configuration: .init(
                additionalChannelHandlers: RequestHeadDeadline.handlers(timeout: headerTimeout),
                idleTimeout: .nanoseconds(configuration.idleTimeout.saturatedNanoseconds)))
        guard let tls = configuration.tls else { return http }
        return try .tls(http, tlsConfiguration: tls.serverConfiguration())
    }
}

/// The PEM files of `--tls-cert` (the certificate, then any intermediates) and `--tls-key`.
public struct TLSFiles: Sendable, Equatable {
    public var certificatePath: String
    public var privateKeyPath: String

    public init(certificatePath: String, privateKeyPath: String) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
    }

    /// Reads both files; a missing or malformed one is a `ServerConfiguration.Problem`.
    func serverConfiguration() throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw ServerConfiguration.Problem.unreadableTLSFile(path: certificatePath, reason: "\(error)")
        }
        guard !chain.isEmpty else {
            throw ServerConfiguration.Problem.unreadableTLSFile(path: certificatePath, reason: "no certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: privateKeyPath, format: .pem)
        } catch {
            throw ServerConfiguration.Problem.unreadableTLSFile(path: privateKeyPath, reason: "\(error)")
        }
        return .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    }
}
