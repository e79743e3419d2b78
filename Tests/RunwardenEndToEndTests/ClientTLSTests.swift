import AsyncHTTPClient
import Foundation
import RunwardenClient
import RunwardenCore
import RunwardenTestSupport
import Testing

/// SPEC §6: `--ca-file PEM` makes the runner and the CLI trust a private CA — against a real
/// `serve --tls-cert/--tls-key` whose certificate a CA made here with `openssl` signed.
@Suite("--ca-file", .serialized, .timeLimit(.minutes(2)))
struct ClientTLSTests {
    /// A private CA and a certificate it signed for 127.0.0.1, in `directory`.
    struct PrivateCA {
        var ca: URL
        var certificate: URL
        var key: URL

        init(in directory: URL) async throws {
            func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
            try Data("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n".utf8)
                .write(to: directory.appendingPathComponent("server.ext"))
            let newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            let steps: [[String]] = [
                ["req", "-x509"] + newKey + ["-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=Runwarden test CA"],
                ["req"] + newKey + ["-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=127.0.0.1"],
                [
                    "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial",
                    "-out", path("server.pem"), "-days", "2", "-extfile", path("server.ext"),
                ],
            ]
            for step in steps {
                let result = try await ChildProcess.run("/usr/bin/openssl", step)
                try #require(result.status == 0, "openssl \(step.joined(separator: " ")): \(result.output)")
            }
            ca = directory.appendingPathComponent("ca.pem")
            certificate = directory.appendingPathComponent("server.pem")
            self.key = directory.appendingPathComponent("server.key")
        }
    }

    @Test("a CA file that is missing or holds no PEM certificate is refused at once; a good one is trusted")
    func caFileChecked() async throws {
        let directory = try Cluster().directory
        let authority = try await PrivateCA(in: directory)
        #expect(throws: CAFileError.self) { try RunwardenClient.configuration(caFile: directory.appendingPathComponent("none.pem").path) }
        let garbage = directory.appendingPathComponent("garbage.pem")
        try Data("not a certificate\n".utf8).write(to: garbage)
        #expect(throws: CAFileError.self) { try RunwardenClient.configuration(caFile: garbage.path) }
        #expect(try RunwardenClient.configuration(caFile: authority.ca.path).tlsConfiguration != nil)
        #expect(try RunwardenClient.http(caFile: authority.ca.path) === RunwardenClient.http(caFile: authority.ca.path))

        let runner = try ChildProcess(["runner", "--ca-file", garbage.path, "--work-dir", "w"], in: directory, name: "runner")
        #expect(await runner.waitForExit() != 0)
        #expect(runner.output.contains("--ca-file \(garbage.path)"))
        let runs = try ChildProcess(["runs", "--ca-file", garbage.path], in: directory, name: "runs")
        #expect(await runs.waitForExit() == 1)
        #expect(runs.output.contains("--ca-file \(garbage.path)"))
    }

    @Test("a real runner completes a run against an HTTPS server it trusts through --ca-file; without it the CLI refuses the server")
    func runnerOverTLS() async throws {
        let directory = try Cluster().directory
        let authority = try await PrivateCA(in: directory)
        let server = try ChildProcess(
            [
                "serve", "--port", "0", "--database", directory.appendingPathComponent("tls.sqlite").path,
                "--tls-cert", authority.certificate.path, "--tls-key", authority.key.path,
            ], in: directory, name: "server")
        let url = await server.listeningURL()
        let serverURL = try #require(url, "no https server: \(server.output)")
        #expect(serverURL.hasPrefix("https://127.0.0.1:"))
        let client = RunwardenClient(servers: [serverURL], token: nil, http: try RunwardenClient.http(caFile: authority.ca.path))
        let runner = try ChildProcess(
            ["runner", "--server", serverURL, "--ca-file", authority.ca.path, "--name", "tls-host", "--work-dir", "work"],
            in: directory, name: "runner")
        let body = try JSONValue.parse(Data(#"{"workflow": "tls", "tasks": [{"name": "a", "command": "echo over tls"}]}"#.utf8))
        let runID = try await client.createRun(body).id
        var run = try await client.run(runID)
        let deadline = ContinuousClock.now + .seconds(30)
        while !run.isTerminal, ContinuousClock.now < deadline { run = try await client.run(runID, afterVersion: run.version, wait: 2) }
        #expect(run.status == .succeeded, "\(runner.output)")
        #expect(run.tasks?.first?.runner == "tls-host")

        let trusted = try ChildProcess(["status", runID, "--server", serverURL, "--ca-file", authority.ca.path], in: directory, name: "trusted")
        #expect(await trusted.waitForExit() == 0, "\(trusted.output)")
        #expect(trusted.output.contains("SUCCEEDED"))
        let untrusted = try ChildProcess(["status", runID, "--server", serverURL], in: directory, name: "untrusted")
        #expect(await untrusted.waitForExit() == 1)
        #expect(untrusted.output.contains("cannot reach the server"))
    }
}
