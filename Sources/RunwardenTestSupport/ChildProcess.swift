import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process of a test, its stdout and stderr captured to one file (a file, not a pipe:
/// nothing has to drain it, and a grandchild that inherits it cannot block a wait). Every wait
/// polls with a deadline; what outlives the test is killed when this goes away.
public final class ChildProcess: @unchecked Sendable {
    public let outputURL: URL
    private let process = Process()
    /// The output file is ours to remove (a temp file the caller never named).
    private let ownsOutput: Bool
    private let lock = NSLock()
    private var stopped = false

    /// Starts `executable`. Output goes to `outputURL` (appended to), or a temp file removed
    /// with this object. `environment` replaces the test's own when given.
    public init(
        _ executable: String, _ arguments: [String], outputTo outputURL: URL? = nil, directory: URL? = nil,
        environment: [String: String]? = nil
    ) throws {
        ownsOutput = outputURL == nil
        self.outputURL = outputURL
            ?? TestScratch.root.appendingPathComponent("child-\(UUID().uuidString).log")
        if !FileManager.default.fileExists(atPath: self.outputURL.path) {
            _ = FileManager.default.createFile(atPath: self.outputURL.path, contents: nil)
        }
        let output = try FileHandle(forWritingTo: self.outputURL)
        defer { try? output.close() }  // the child has its own copy
        try output.seekToEnd()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    public var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.processIdentifier }
    /// The exit status (or the signal that ended it); only meaningful once it is not running.
    public var terminationStatus: Int32 { process.terminationStatus }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Polls `probe` every 20 ms until it gives a value, the process ends (then one last try),
    /// or `limit` passes (nil).
    public func waitFor<Value>(within limit: Duration, _ probe: () -> Value?) async -> Value? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let value = probe() { return value }
            if !process.isRunning { return probe() }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return probe()
    }

    /// Whether the output came to contain `text` (before the process ended or `limit` passed).
    public func waitForOutput(_ text: String, within limit: Duration) async -> Bool {
        await waitFor(within: limit) { output.contains(text) ? true : nil } ?? false
    }

    /// Waits for the end, up to `limit`; the exit status, or nil when it had to be killed.
    public func waitForExit(within limit: Duration = .seconds(15)) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            stop()
            return nil
        }
        return process.terminationStatus
    }

    /// SIGKILL if still running, and reap it. Safe from `defer` and more than once.
    public func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        stop()
        if ownsOutput { try? FileManager.default.removeItem(at: outputURL) }
    }

    /// Runs a short command to its end (killed after `limit`): its status (nil when killed)
    /// and output.
    public static func run(
        _ executable: String, _ arguments: [String], directory: URL? = nil, within limit: Duration = .seconds(60)
    ) async throws -> (status: Int32?, output: String) {
        let child = try ChildProcess(executable, arguments, directory: directory)
        let status = await child.waitForExit(within: limit)
        return (status, child.output)
    }

    /// The same, blocking the calling thread: for `defer`, static set-up, and code already on a
    /// dispatch queue. Only for commands that end by themselves.
    @discardableResult
    public static func runBlocking(_ executable: String, _ arguments: [String], directory: URL? = nil) throws -> (
        status: Int32, output: String
    ) {
        let child = try ChildProcess(executable, arguments, directory: directory)
        child.process.waitUntilExit()
        return (child.process.terminationStatus, child.output)
    }
}
