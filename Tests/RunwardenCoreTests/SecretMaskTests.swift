import Testing

@testable import RunwardenCore

/// `secret_env` values never reach a stored log (SPEC §9), however the output is cut into pieces.
@Suite("Secret masking")
struct SecretMaskTests {
    static func masked(_ pieces: [String], secrets: [String]) -> String {
        var mask = SecretMask(secrets: secrets)
        var output: [UInt8] = []
        for piece in pieces { output += mask.mask(Array(piece.utf8)) }
        output += mask.finish()
        return String(decoding: output, as: UTF8.self)
    }

    @Test(arguments: [
        (["token=hunter22 ok\n"], "token=*** ok\n"),
        (["token=hun", "ter22 ok\n"], "token=*** ok\n"),  // split across two pieces
        (["h", "u", "n", "t", "e", "r", "2", "2"], "***"),  // one byte at a time
        (["hunter2 is not it\n"], "hunter2 is not it\n"),  // a prefix that never completes
        (["ends with hunt"], "ends with hunt"),  // held back, then given out by finish
        (["hunter22hunter22"], "******"),
        (["s3cr3t-long and hunter22"], "*** and ***"),
    ])
    func masksEverySecretWhereverItIsCut(pieces: [String], expected: String) {
        #expect(Self.masked(pieces, secrets: ["hunter22", "s3cr3t-long"]) == expected)
    }

    @Test func everyWayOfCuttingAMaskedLineGivesTheSameBytes() {
        let line = "user=admin password=correct-horse token=correct-horse-battery end\n"
        let secrets = ["correct-horse", "correct-horse-battery"]
        let whole = Self.masked([line], secrets: secrets)
        #expect(whole == "user=admin password=*** token=*** end\n")
        for cut in 1..<line.utf8.count {
            let bytes = Array(line.utf8)
            let pieces = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            #expect(Self.masked(pieces, secrets: secrets) == whole, "cut at \(cut)")
        }
    }

    @Test func withoutSecretsBytesPassUnchanged() {
        var mask = SecretMask(secrets: [])
        #expect(mask.isEmpty)
        #expect(mask.mask([0xFF, 0x00, 0x41]) == [0xFF, 0x00, 0x41])
    }
}
