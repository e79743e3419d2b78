import Foundation
import RunwardenTestSupport
import Testing

/// The OpenAPI document the server serves is the contract it is checked against: schemathesis
/// (from PyPI, in a venv the script creates) fuzzes a live `runwarden serve` with it and fails
/// on any 5xx, undocumented status, wrong content type or response outside the schema.
@Suite("OpenAPI contract", .timeLimit(.minutes(10)))
struct OpenAPIContractTests {

    @Test("schemathesis finds no server error and no response that breaks /openapi.json")
    func schemathesisAgainstTheLiveServer() async throws {
        let script = packageRoot.appendingPathComponent("Tests/Support/schemathesis.sh").path
        let (status, output) = try await ChildProcess.run("/bin/bash", [script, runwardenBinary.path], within: .seconds(540))
        let summary = output.split(separator: "\n").last(where: { $0.hasPrefix("schemathesis:") }) ?? "no summary"

        #expect(status == 0, "schemathesis failed (\(summary)):\n\(output.suffix(6000))")
        #expect(summary.contains(" 0 failed"), "\(summary)")
        #expect(!output.contains("did not answer a document"), "the server did not serve its own /openapi.json")
        #expect(!output.contains("served document differs"), "the served document is not the one in Resources/")
        print(summary)
    }
}
