import Foundation
import PostgresNIO
import RunwardenCore

/// A `postgres://user[:password]@host[:port]/database` URL (also `postgresql://`), with an
/// optional `?sslmode=` and `sslrootcert=PATH` as libpq reads them. Without `sslmode`, TLS is
/// off for a loopback host and required otherwise: a password never crosses a network in clear.
struct PostgresURL: Sendable, Equatable {
    enum TLSMode: String, Sendable {
        /// `prefer` and `require` encrypt without checking the certificate, as libpq does;
        /// `verify-ca` checks it against the trusted roots, `verify-full` also its host name.
        case disable, prefer, require, verifyCA, verifyFull
    }

    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String
    var tlsMode: TLSMode
    /// `sslrootcert`: the PEM file of the CA to trust instead of the system's roots.
    var rootCertificatePath: String?

    init(_ text: String) throws(PostgresConfigurationError) {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql"
        else { throw PostgresConfigurationError("\(Self.redact(text)) is not a postgres://user@host:port/database URL") }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresConfigurationError("\(Self.redact(text)) names no host")
        }
        guard let username = components.user, !username.isEmpty else {
            throw PostgresConfigurationError("\(Self.redact(text)) names no user (postgres://USER@host:port/database)")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw PostgresConfigurationError("\(Self.redact(text)) names no database (postgres://user@host:port/DATABASE)")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw PostgresConfigurationError("\(Self.redact(text)) has an invalid port")
        }
        // Brackets of an IPv6 literal are not part of the address NIO resolves.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 5432
        // `URLComponents.user`/`.password` are percent-decoded.
        self.username = username
        self.password = components.password
        self.database = database.removingPercentEncoding ?? database

        if let mode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value {
            switch mode {
            case "disable": tlsMode = .disable
            case "allow", "prefer": tlsMode = .prefer
            case "require": tlsMode = .require
            case "verify-ca": tlsMode = .verifyCA
            case "verify-full": tlsMode = .verifyFull
            default:
                throw PostgresConfigurationError("unknown sslmode \"\(mode)\" (disable, prefer, require, verify-ca or verify-full)")
            }
        } else {
            tlsMode = LoopbackName.matches(self.host) ? .disable : .require
        }
        rootCertificatePath = components.queryItems?.first(where: { $0.name == "sslrootcert" })?.value
    }

    /// The pool's configuration.
    func clientConfiguration(maxConnections: Int) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch tlsMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(tlsConfiguration)
        case .require, .verifyCA, .verifyFull: tls = .require(tlsConfiguration)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = max(1, maxConnections)
        configuration.options.additionalStartupParameters = [("application_name", "runwarden")]
        return configuration
    }

    /// The configuration of a single connection outside the pool (the LISTEN connection).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch tlsMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration))
        case .require, .verifyCA, .verifyFull: tls = .require(try NIOSSLContext(configuration: tlsConfiguration))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.additionalStartupParameters = [("application_name", "runwarden-listen")]
        return configuration
    }

    /// What `sslmode` and `sslrootcert` ask of the server's certificate.
    var tlsConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch tlsMode {
        case .disable, .prefer, .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        if let rootCertificatePath { configuration.trustRoots = .file(rootCertificatePath) }
        return configuration
    }

    /// `host:port/database`, for messages (never the password).
    var displayName: String { "\(host):\(port)/\(database)" }

    /// The URL with its password replaced, for error messages.
    static func redact(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "the database URL"
    }
}

/// The database URL given to `PostgresRunStore` cannot be used.
public struct PostgresConfigurationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}
