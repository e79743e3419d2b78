import Foundation
import RunwardenCore
import Synchronization

// MARK: - Time

typealias Instant = ContinuousClock.Instant

extension Duration {
    /// Milliseconds as a Double (latency figures).
    var ms: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
    var seconds: Double { ms / 1000 }
}

func elapsedMs(since start: Instant) -> Double { (ContinuousClock.now - start).ms }

// MARK: - Percentiles

/// Nearest-rank percentile of an ascending list (q in 0...100) — the same rule as the Prefect
/// script, so the two tables compare like with like.
func percentile(_ sorted: [Double], _ q: Double) -> Double? {
    guard !sorted.isEmpty else { return nil }
    let rank = Int((q * Double(sorted.count) / 100).rounded(.up)) - 1
    return sorted[max(0, min(sorted.count - 1, rank))]
}

func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }

/// `{"p50", "p99", "n", "max"}` in milliseconds, as in prefect_bench.py.
func latencySummary(_ values: [Double]) -> JSONValue {
    let sorted = values.sorted()
    return .object([
        "p50": number(percentile(sorted, 50)), "p99": number(percentile(sorted, 99)),
        "n": .int(Int64(sorted.count)), "max": number(sorted.last),
    ])
}

func number(_ value: Double?, digits: Int = 2) -> JSONValue {
    guard let value, value.isFinite else { return .null }
    let scale = pow(10, Double(digits))
    return .double((value * scale).rounded() / scale)
}

func number(_ value: Int?) -> JSONValue { value.map { .int(Int64($0)) } ?? .null }

// MARK: - Bounded load

/// One workload at one concurrency level: bounded by a count of iterations AND a deadline,
/// whichever comes first. An iteration already started when the bound is hit finishes and counts.
final class Bound: Sendable {
    let maxIterations: Int
    let deadline: Instant
    private let claimed = Atomic<Int>(0)
    private let stop = Mutex<String?>(nil)

    init(maxIterations: Int, duration: Duration) {
        self.maxIterations = maxIterations
        self.deadline = .now + duration
    }

    /// Takes the next iteration, or says the level is over.
    func next() -> Bool {
        if ContinuousClock.now >= deadline {
            stop.withLock { if $0 == nil { $0 = "time" } }
            return false
        }
        let taken = claimed.wrappingAdd(1, ordering: .relaxed).newValue
        if taken > maxIterations {
            stop.withLock { if $0 == nil { $0 = "count" } }
            return false
        }
        return true
    }

    var iterations: Int { min(claimed.load(ordering: .relaxed), maxIterations) }
    var stoppedBy: String? { stop.withLock { $0 } }
}

/// What one worker saw; merged after the level.
struct Tally: Sendable {
    var ok = 0
    var failed = 0
    var failures: [String: Int] = [:]
    var failuresByStep: [String: [String: Int]] = [:]
    var failureSamples: [String: String] = [:]
    var latency: [String: [Double]] = [:]
    var okIDs: [String] = []
    var keepIDs = 0

    init(keepIDs: Int = 0) { self.keepIDs = keepIDs }

    mutating func time(_ kind: String, _ start: Instant) {
        latency[kind, default: []].append(elapsedMs(since: start))
    }

    mutating func succeed(id: String? = nil) {
        ok += 1
        if let id, okIDs.count < keepIDs { okIDs.append(id) }
    }

    mutating func fail(_ reason: String, step: String, sample: String?) {
        failed += 1
        failures[reason, default: 0] += 1
        failuresByStep[step, default: [:]][reason, default: 0] += 1
        if failureSamples[reason] == nil, let sample { failureSamples[reason] = String(sample.prefix(300)) }
    }

    mutating func merge(_ other: Tally) {
        ok += other.ok
        failed += other.failed
        for (key, count) in other.failures { failures[key, default: 0] += count }
        for (step, reasons) in other.failuresByStep {
            for (key, count) in reasons { failuresByStep[step, default: [:]][key, default: 0] += count }
        }
        for (key, sample) in other.failureSamples where failureSamples[key] == nil { failureSamples[key] = sample }
        for (kind, values) in other.latency { latency[kind, default: []] += values }
        okIDs += other.okIDs.prefix(max(0, keepIDs - okIDs.count))
    }
}

/// Runs `iteration` on `concurrency` tasks until `bound` says stop; returns the merged tally and
/// the wall time until the last worker returned.
func runLevel(
    concurrency: Int, bound: Bound, keepIDs: Int = 0,
    iteration: @escaping @Sendable (_ worker: Int, _ sequence: Int, _ tally: inout Tally) async -> Void
) async -> (Tally, Double) {
    let start = ContinuousClock.now
    let total = await withTaskGroup(of: Tally.self, returning: Tally.self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var tally = Tally(keepIDs: keepIDs)
                var sequence = 0
                while bound.next() {
                    await iteration(worker, sequence, &tally)
                    sequence += 1
                }
                return tally
            }
        }
        var total = Tally(keepIDs: keepIDs)
        for await tally in group { total.merge(tally) }
        return total
    }
    return (total, (ContinuousClock.now - start).seconds)
}

func failuresText(_ failures: [String: Int]) -> String {
    let text = failures.sorted { $0.value > $1.value }.map { "\($0.key):\($0.value)" }.joined(separator: ", ")
    return text.isEmpty ? "-" : text
}

func dictJSON(_ map: [String: Int]) -> JSONValue {
    .object(map.sorted { $0.key < $1.key }.map { JSONValue.Member($0.key, .int(Int64($0.value))) })
}

func dictJSON(_ map: [String: String]) -> JSONValue {
    .object(map.sorted { $0.key < $1.key }.map { JSONValue.Member($0.key, .string($0.value)) })
}

func dictJSON(_ map: [String: [String: Int]]) -> JSONValue {
    .object(map.sorted { $0.key < $1.key }.map { JSONValue.Member($0.key, dictJSON($0.value)) })
}

// MARK: - JSON output

extension JSONValue {
    /// Indented JSON text, members in their stored order (results files are read by people).
    func pretty(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .array(let items):
            if items.isEmpty { return "[]" }
            if items.allSatisfy({ if case .object = $0 { return false }; if case .array = $0 { return false }; return true }) {
                return "[" + items.map { $0.pretty() }.joined(separator: ", ") + "]"
            }
            return "[\n" + items.map { inner + $0.pretty(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n"
                + members.map { inner + Self.quoted($0.key) + ": " + $0.value.pretty(indent: inner) }.joined(separator: ",\n")
                + "\n" + indent + "}"
        case .double(let value):
            if !value.isFinite { return "null" }
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return String(value)
        default:
            return String(decoding: encoded(), as: UTF8.self)
        }
    }

    static func quoted(_ text: String) -> String {
        String(decoding: JSONValue.string(text).encoded(), as: UTF8.self)
    }

    var doubleValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    var stringValue: String? { if case .string(let value) = self { value } else { nil } }

    /// `value["a"]?["b"]` for a path "a.b" (object members only).
    func at(_ path: String) -> JSONValue? {
        var current: JSONValue? = self
        for key in path.split(separator: ".") { current = current?[String(key)] }
        return current
    }
}

// MARK: - /proc

enum ProcFS {
    /// The whole of a /proc file (they report size 0, so read until EOF).
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// VmRSS of a process, KiB.
    static func rssKiB(_ pid: Int32) -> Int? {
        guard let text = read("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// User + system CPU time of a process, in clock ticks.
    static func cpuTicks(_ pid: Int32) -> Int? {
        guard let text = read("/proc/\(pid)/stat"),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state(0) ppid(1) … utime(11) stime(12).
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// Established TCP connections whose local port is `port` (the server's side of them).
    static func establishedConnections(localPort port: Int) -> Int {
        let hexPort = String(format: ":%04X", port)
        var count = 0
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = read(file) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 3 else { continue }
                if fields[3] == "01", fields[1].hasSuffix(hexPort) { count += 1 }
            }
        }
        return count
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func loadAverage() -> [Double] {
        guard let text = read("/proc/loadavg") else { return [] }
        return text.split(separator: " ").prefix(3).compactMap { Double($0) }
    }
}

/// Where the CPU went during a level: the server, this load generator, everything else, idle
/// (cores, from /proc: the server's and our own utime+stime, and the machine's /proc/stat).
struct CPUMeter {
    struct Sample {
        let server: Int
        let bench: Int
        let busy: Int
        let total: Int
        let at: Instant
    }

    let serverPID: Int32?
    let start: Sample

    init(serverPID: Int32?) {
        self.serverPID = serverPID
        start = Self.sample(serverPID)
    }

    static func sample(_ pid: Int32?) -> Sample {
        var busy = 0
        var total = 0
        if let line = ProcFS.read("/proc/stat")?.split(separator: "\n").first, line.hasPrefix("cpu ") {
            let fields = line.split(separator: " ").dropFirst().compactMap { Int($0) }
            // user nice system idle iowait irq softirq steal
            total = fields.prefix(8).reduce(0, +)
            busy = total - (fields.count > 4 ? fields[3] + fields[4] : 0)
        }
        return Sample(
            server: pid.flatMap(ProcFS.cpuTicks) ?? 0, bench: ProcFS.cpuTicks(getpid()) ?? 0, busy: busy, total: total, at: .now)
    }

    /// Cores used per second of wall time since `start`.
    func finish() -> JSONValue {
        let end = Self.sample(serverPID)
        let seconds = max((end.at - start.at).seconds, 0.001)
        let tick = ProcFS.ticksPerSecond
        let server = Double(end.server - start.server) / tick / seconds
        let bench = Double(end.bench - start.bench) / tick / seconds
        let busy = Double(end.busy - start.busy) / tick / seconds
        let all = Double(end.total - start.total) / tick / seconds
        return .object([
            "server_cores": number(serverPID == nil ? nil : server), "bench_cores": number(bench),
            "other_cores": number(max(0, busy - server - bench)), "idle_cores": number(max(0, all - busy)),
        ])
    }
}

func log(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

func say(_ text: String) {
    print(text)
    fflush(nil)
}

func fmt(_ value: Double?, _ digits: Int = 1) -> String {
    guard let value else { return "-" }
    return String(format: "%.\(digits)f", value)
}

func pad(_ text: String, _ width: Int, right: Bool = true) -> String {
    if text.count >= width { return text }
    let padding = String(repeating: " ", count: width - text.count)
    return right ? padding + text : text + padding
}

// MARK: - Shared state for task groups (Mutex and Atomic cannot be captured by escaping closures)

final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
    var value: Value { withLock { $0 } }
}

final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    func add(_ amount: Int = 1) { _ = atomic.wrappingAdd(amount, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

final class StopFlag: Sendable {
    private let atomic = Atomic<Bool>(false)
    func set() { atomic.store(true, ordering: .relaxed) }
    var isSet: Bool { atomic.load(ordering: .relaxed) }
}

/// Many tasks wait here until `open()`.
final class Gate: Sendable {
    private let state = Locked<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = state.withLock { state in
                if !state.open { state.waiting.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}
