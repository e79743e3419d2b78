import Foundation

/// SplitMix64: small, fast, and the same sequence for the same seed on every platform, so a
/// failing fuzz or fault test can be replayed from the seed it printed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }
    public mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }
    public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    /// Milliseconds in `range`, as a Duration.
    public mutating func milliseconds(_ range: ClosedRange<Int>) -> Duration { .milliseconds(int(range)) }

    /// The seed in the environment variable `name` (to replay a failure), else a fresh one.
    /// Callers print it, so every failure names the seed that reproduces it.
    public static func seed(from name: String) -> UInt64 {
        if let text = ProcessInfo.processInfo.environment[name], let seed = UInt64(text) { return seed }
        return UInt64.random(in: .min ... .max)
    }
}
