import Testing

@testable import RunwardenStorePostgres

/// How a `postgres://` URL chooses TLS (SPEC §6: `sslmode=require` by default off loopback).
@Suite("PostgreSQL URLs")
struct PostgresURLTests {
    @Test(
        "without sslmode, TLS is off on loopback and required anywhere else",
        arguments: [
            ("postgres://u@127.0.0.1/db", PostgresURL.TLSMode.disable), ("postgres://u@localhost:5433/db", .disable),
            ("postgres://u@[::1]/db", .disable), ("postgres://u@127.0.0.5/db", .disable),
            ("postgres://u@db.internal/db", .require), ("postgres://u@10.0.0.7/db", .require),
            ("postgres://u@127.evil.example/db", .require), ("postgresql://u@[2001:db8::1]:5432/db", .require),
        ])
    func defaultMode(url: String, expected: PostgresURL.TLSMode) throws {
        #expect(try PostgresURL(url).tlsMode == expected)
    }

    @Test("sslmode and sslrootcert are read as libpq reads them; verification follows the mode")
    func explicitModes() throws {
        #expect(try PostgresURL("postgres://u@db/db?sslmode=disable").tlsMode == .disable)
        #expect(try PostgresURL("postgres://u@127.0.0.1/db?sslmode=require").tlsMode == .require)
        #expect(try PostgresURL("postgres://u@db/db?sslmode=require").tlsConfiguration.certificateVerification == .none)
        let verified = try PostgresURL("postgres://u@db/db?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(verified.tlsMode == .verifyFull)
        #expect(verified.tlsConfiguration.certificateVerification == .fullVerification)
        #expect(verified.rootCertificatePath == "/etc/ca.pem")
        #expect(try PostgresURL("postgres://u@db/db?sslmode=verify-ca").tlsConfiguration.certificateVerification == .noHostnameVerification)
        #expect(throws: PostgresConfigurationError.self) { try PostgresURL("postgres://u@db/db?sslmode=sometimes") }
    }
}
