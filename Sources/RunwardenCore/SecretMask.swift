/// Replaces secret values by `***` in a stream of bytes that arrives in pieces (SPEC §9): a value
/// split across two pieces is still found, because the end of a piece that could be the start of
/// a secret is held back until the next piece (or `finish`) tells.
///
/// One per output stream (stdout and stderr interleave in a log, each masked on its own).
public struct SecretMask: Sendable {
    static let replacement = Array("***".utf8)

    private let secrets: [[UInt8]]
    /// Whether a byte starts any secret, so most bytes are passed by one lookup.
    private let starts: [Bool]
    private var held: [UInt8] = []

    public init(secrets: some Sequence<String>) {
        // Longest first: of two secrets starting at one place, the longer is masked whole.
        self.secrets = Set(secrets.filter { !$0.isEmpty }).map { Array($0.utf8) }.sorted { $0.count > $1.count }
        var starts = [Bool](repeating: false, count: 256)
        for secret in self.secrets { starts[Int(secret[0])] = true }
        self.starts = starts
    }

    public var isEmpty: Bool { secrets.isEmpty }

    /// The masked bytes that can be written now; what might be the start of a secret is kept.
    public mutating func mask(_ bytes: some Collection<UInt8>) -> [UInt8] {
        mask(bytes, isLast: false)
    }

    /// What is held back, masked, once no more bytes follow.
    public mutating func finish() -> [UInt8] {
        mask([], isLast: true)
    }

    private mutating func mask(_ bytes: some Collection<UInt8>, isLast: Bool) -> [UInt8] {
        guard !secrets.isEmpty else { return Array(bytes) }
        let input = held + bytes
        held = []
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        scan: while index < input.count {
            guard starts[Int(input[index])] else {
                output.append(input[index])
                index += 1
                continue
            }
            for secret in secrets {
                switch Self.compare(secret, input, at: index) {
                case .whole:
                    output += Self.replacement
                    index += secret.count
                    continue scan
                case .prefix where !isLast:
                    held = Array(input[index...])  // the rest may complete it: decide with the next piece
                    return output
                case .prefix, .different:
                    continue
                }
            }
            output.append(input[index])
            index += 1
        }
        return output
    }

    private enum Match { case whole, prefix, different }

    private static func compare(_ secret: [UInt8], _ input: [UInt8], at start: Int) -> Match {
        let available = input.count - start
        for offset in 0..<min(secret.count, available) where input[start + offset] != secret[offset] { return .different }
        return available >= secret.count ? .whole : .prefix
    }
}
