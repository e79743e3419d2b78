import Testing
import RunwardenCore
import RunwardenTestSupport

@Suite("Identifiers")
struct IdentifierTests {
    @Test(arguments: [IDPrefix.run, .task, .evt, .wh, .dlv])
    func anIdCarriesItsTypePrefixAndIsWellFormed(_ prefix: IDPrefix) {
        let id = Identifier.make(prefix, at: t0)
        #expect(id.hasPrefix(prefix.rawValue + "_"))
        #expect(id.count == prefix.rawValue.count + 1 + 26)
        #expect(Identifier.isWellFormed(id, prefix))
    }

    @Test func idsSortByCreationTime() {
        var generator = SeededRandom(seed: 42)
        let times = [0, 1, 2, 999, 1_000, 60_000, 86_400_000, 31_536_000_000].map { t0.adding(milliseconds: Int64($0)) }
        let ids = times.map { Identifier.make(.run, at: $0, using: &generator) }
        #expect(ids.sorted() == ids)
        #expect(Set(ids).count == ids.count)
    }

    @Test func idsSortByCreationTimeWhateverTheirRandomPart() {
        for seed in UInt64(0)..<50 {
            var early = SeededRandom(seed: seed)
            var late = SeededRandom(seed: seed &* 7919 &+ 1)
            let a = Identifier.make(.evt, at: t0, using: &early)
            let b = Identifier.make(.evt, at: t0.adding(milliseconds: 1), using: &late)
            #expect(a < b)
        }
    }

    @Test func idsMadeOneAfterAnotherInTheSameMillisecondStillSortInOrder() {
        // Other tests make ids concurrently, so only this thread's own order is asserted.
        let ids = (0..<200).map { _ in Identifier.make(.task, at: t0) }
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 })
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { Identifier.isWellFormed($0, .task) })
    }

    @Test func theTimePartEncodesTheCreationMillisecond() {
        var generator = SeededRandom(seed: 1)
        let a = Identifier.make(.task, at: t0, using: &generator)
        let b = Identifier.make(.task, at: t0, using: &generator)
        let c = Identifier.make(.task, at: t0.adding(milliseconds: 1), using: &generator)
        #expect(a.prefix(15) == b.prefix(15))  // "task_" + 10 time characters
        #expect(a != b)
        #expect(c.prefix(15) != a.prefix(15))
        #expect(Identifier.make(.run, at: Timestamp(milliseconds: 0), using: &generator).hasPrefix("run_0000000000"))
    }

    @Test func theSameSeedGivesTheSameId() {
        var first = SeededRandom(seed: 7)
        var second = SeededRandom(seed: 7)
        #expect(Identifier.make(.wh, at: t0, using: &first) == Identifier.make(.wh, at: t0, using: &second))
    }

    /// 26 characters of Crockford base32.
    static let body = "01KDX" + String(repeating: "0", count: 21)
    static let cases: [(id: String, prefix: IDPrefix, expected: Bool)] = [
        ("run_" + body, .run, true),
        ("task_" + body, .task, true),
        ("run_" + body + "0", .run, false),  // one character too many
        ("run_" + body.dropLast(), .run, false),  // one too few
        ("task_" + body, .run, false),  // another prefix
        ("run_" + body, .task, false),
        ("run-" + body, .run, false),
        ("run_" + body.lowercased(), .run, false),
        ("run_" + body.dropLast() + "U", .run, false),  // U, I, L, O are not in Crockford's alphabet
        ("run_" + body.dropLast() + "I", .run, false),
        ("run_" + body.dropLast() + "L", .run, false),
        ("run_" + body.dropLast() + "O", .run, false),
        ("run_" + body.dropLast(6) + "../../", .run, false),
        ("", .run, false),
        ("run_", .run, false),
    ]

    @Test(arguments: cases)
    func isWellFormedAcceptsOnlyThePrefixAndTwentySixCrockfordCharacters(id: String, prefix: IDPrefix, expected: Bool) {
        #expect(Identifier.isWellFormed(id, prefix) == expected)
    }

    @Test func generatedIdsUseOnlyCrockfordCharacters() {
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        for _ in 0..<100 {
            let id = Identifier.make(.dlv, at: t0)
            #expect(id.dropFirst(4).allSatisfy(alphabet.contains))
        }
    }

    @Test func aNonASCIIIdOfTheRightCharacterCountIsNotWellFormed() {
        let id = "run_" + String(repeating: "é", count: 26)
        #expect(!Identifier.isWellFormed(id, .run))
    }
}
