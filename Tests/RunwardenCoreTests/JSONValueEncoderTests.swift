import Foundation
import RunwardenCore
import Testing

@Suite("JSONValueEncoder")
struct JSONValueEncoderTests {
    struct Sample: Encodable {
        var zeta: Int
        var alpha: String?
        var shownOnce: String?
        var nested: [Int64]
        var env: [String: String]

        enum CodingKeys: String, CodingKey, OmittedWhenNil {
            case zeta, alpha
            case shownOnce = "shown_once"
            case nested, env
            static let omittedWhenNil: Set<String> = ["shown_once"]
        }
    }

    @Test func membersComeInDeclaredOrderNilIsNullUnlessOmittedAndMapsAreSorted() {
        let json = JSONValueEncoder.encode(Sample(zeta: 1, alpha: nil, shownOnce: nil, nested: [2, 3], env: ["b": "1", "a": "2"]))
        #expect(json.objectMembers?.map(\.key) == ["zeta", "alpha", "nested", "env"])
        #expect(json["alpha"] == .null)
        #expect(json["nested"] == .array([.int(2), .int(3)]))
        #expect(json["env"]?.objectMembers?.map(\.key) == ["a", "b"])
        let shown = JSONValueEncoder.encode(Sample(zeta: 1, alpha: "x", shownOnce: "s", nested: [], env: [:]))
        #expect(shown.objectMembers?.map(\.key) == ["zeta", "alpha", "shown_once", "nested", "env"])
        #expect(shown["shown_once"] == .string("s"))
    }

    @Test func aWireTypeRoundTripsThroughTheClientsDecoder() throws {
        let answer = ClaimAnswer(
            task: ClaimedTask(id: "task_1", runID: "run_1", name: "build", command: ["make"], env: ["CI": "1"], timeoutS: 30),
            leaseS: 30)
        let bytes = JSONValueEncoder.encode(answer).encoded()
        #expect(try JSONDecoder().decode(ClaimAnswer.self, from: bytes) == answer)
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""workspace":null"#), "a nil field is written as null")
    }
}
