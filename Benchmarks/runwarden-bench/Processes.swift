import Foundation
import Synchronization

/// Every child process the bench started, so that an interrupt or an error stops them all.
///
/// The pids also sit in a fixed C array that the signal handler reads (kill(2) is
/// async-signal-safe). A handler, not SIG_IGN + a dispatch source: an ignored signal stays
/// ignored in the children, and the servers and perf must still stop on SIGTERM/SIGINT.
enum Children {
    static let capacity = 256
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<Int32> = {
        let slots = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        return slots
    }()
    private static let lock = Mutex<Void>(())

    static func add(_ pid: Int32) {
        lock.withLock { _ in
            if let free = (0..<capacity).first(where: { slots[$0] == 0 }) { slots[free] = pid }
        }
    }

    static func remove(_ pid: Int32) {
        lock.withLock { _ in
            for index in 0..<capacity where slots[index] == pid { slots[index] = 0 }
        }
    }

    /// SIGINT/SIGTERM: SIGTERM to every child, then exit.
    static func installSignalHandlers() {
        _ = slots
        let handler: @convention(c) (Int32) -> Void = { signal in
            for index in 0..<Children.capacity where Children.slots[index] > 0 { kill(Children.slots[index], SIGTERM) }
            _exit(128 + signal)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    static func killAll() {
        let all = lock.withLock { _ in (0..<capacity).map { slots[$0] }.filter { $0 > 0 } }
        for pid in all { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, all.contains(where: { kill($0, 0) == 0 && !isZombie($0) }) { usleep(50_000) }
        for pid in all where kill(pid, 0) == 0 && !isZombie(pid) { kill(pid, SIGKILL) }
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let text = ProcFS.read("/proc/\(pid)/stat"),
            let close = text.lastIndex(of: ")")
        else { return true }
        return text[text.index(after: close)...].split(separator: " ").first == "Z"
    }
}

/// A child process with its output in a log file.
///
/// Spawned with posix_spawn and an empty signal mask: Foundation's Process would hand down the
/// calling thread's mask, and the bench runs on threads that block SIGINT/SIGTERM — a server or
/// perf started that way could then only be stopped with SIGKILL.
final class Child: Sendable {
    let pid: Int32
    let logPath: String
    private let exit = Mutex<Int32?>(nil)

    init(executable: String, arguments: [String], logPath: String) throws {
        self.logPath = logPath
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw BenchError("cannot start \(executable): \(String(cString: strerror(result)))") }
        self.pid = pid
        Children.add(pid)
    }

    /// Reaps the child if it has exited.
    var isRunning: Bool {
        exit.withLock { status in
            if status != nil { return false }
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid {
                status = raw
                return false
            }
            return true
        }
    }

    func waitForExit() {
        exit.withLock { status in
            guard status == nil else { return }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0, errno == EINTR {}
            status = raw
        }
        Children.remove(pid)
    }

    func logText() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func logTail(_ lines: Int = 30) -> String {
        logText().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Sends `signal` and waits up to `timeout` for the exit; SIGKILL after that.
    func signalAndWait(_ signal: Int32, timeout: TimeInterval) {
        if isRunning {
            kill(pid, signal)
            let deadline = Date().addingTimeInterval(timeout)
            while isRunning, Date() < deadline { usleep(20_000) }
            if isRunning {
                log("pid \(pid) still running \(Int(timeout)) s after signal \(signal): SIGKILL")
                kill(pid, SIGKILL)
            }
        }
        waitForExit()
    }

    /// SIGTERM, then SIGKILL after `grace`; waits for the exit.
    func stop(grace: TimeInterval = 10) { signalAndWait(SIGTERM, timeout: grace) }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `runwarden serve` on a loopback port it picks itself.
final class ServerProcess: Sendable {
    let child: Child
    let port: Int
    let database: String
    let sqlitePath: String?
    var pid: Int32 { child.pid }
    var base: String { "http://127.0.0.1:\(port)" }

    init(binary: String, database: String, directory: String, name: String, lease: String, extra: [String] = []) async throws {
        let child = try Child(
            executable: binary,
            arguments: ["serve", "--host", "127.0.0.1", "--port", "0", "--database", database, "--lease", lease, "--log-level", "warning"] + extra,
            logPath: directory + "/\(name).log")
        let start = ContinuousClock.now
        var found: Int?
        while found == nil {
            let text = child.logText()
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                let rest = text[range.upperBound...]
                let digits = rest.prefix { $0.isNumber }
                // The whole number is there once a non-digit follows it.
                if rest.count > digits.count, let port = Int(digits) { found = port }
            }
            if found != nil { break }
            if !child.isRunning {
                Children.remove(child.pid)
                throw BenchError("runwarden serve exited before listening:\n\(child.logTail())")
            }
            if ContinuousClock.now - start > .seconds(60) {
                child.stop()
                throw BenchError("runwarden serve did not say where it listens within 60 s:\n\(child.logTail())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        self.child = child
        self.port = found!
        self.database = database
        self.sqlitePath = database.hasPrefix("postgres") ? nil : (database.hasPrefix("sqlite:") ? String(database.dropFirst(7)) : database)
    }

    var rssKiB: Int? { ProcFS.rssKiB(pid) }
    var rssMiB: Double? { rssKiB.map { Double($0) / 1024 } }

    /// Bytes of the SQLite database: the file plus its -wal and -shm.
    var databaseBytes: Int? {
        guard let sqlitePath else { return nil }
        return ["", "-wal", "-shm"].map { ProcFS.fileSize(sqlitePath + $0) }.reduce(0, +)
    }

    /// Waits until the server has used (almost) no CPU for `quiet`, at most `timeout`.
    func waitUntilIdle(quiet: Duration = .milliseconds(500), timeout: Duration = .seconds(30)) async {
        let start = ContinuousClock.now
        var last = ProcFS.cpuTicks(pid) ?? 0
        while ContinuousClock.now - start < timeout {
            try? await Task.sleep(for: quiet)
            let now = ProcFS.cpuTicks(pid) ?? 0
            // At most 2 % of one CPU over the window.
            if Double(now - last) / ProcFS.ticksPerSecond <= quiet.seconds * 0.02 { return }
            last = now
        }
    }

    func stop() { child.stop() }
}

/// Samples the peak RSS of a process while a workload runs.
final class RSSSampler: Sendable {
    let pid: Int32
    private let peak = Atomic<Int>(0)
    private let running = Atomic<Bool>(true)

    init(pid: Int32) { self.pid = pid }

    func run() async {
        while running.load(ordering: .relaxed) {
            if let kib = ProcFS.rssKiB(pid) { _ = peak.max(kib, ordering: .relaxed) }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    func finish() -> Int {
        running.store(false, ordering: .relaxed)
        if let kib = ProcFS.rssKiB(pid) { _ = peak.max(kib, ordering: .relaxed) }
        return peak.load(ordering: .relaxed)
    }
}

/// `perf record -g` on a process for the length of one workload level (when asked for).
final class Profiler: Sendable {
    let child: Child?
    let dataPath: String

    init(pid: Int32, directory: String?, name: String) {
        dataPath = (directory ?? "") + "/\(name).perf.data"
        guard let directory else {
            child = nil
            return
        }
        child = try? Child(
            executable: "/usr/bin/perf",
            arguments: ["record", "-g", "-F", "499", "-o", dataPath, "-p", String(pid)],
            logPath: directory + "/\(name).perf.log")
        if child == nil { log("perf could not start; no profile for \(name)") }
    }

    /// Stops the recording (SIGINT, as perf expects) and writes `NAME.perf.txt`.
    func finish() {
        guard let child else { return }
        child.signalAndWait(SIGINT, timeout: 30)
        let reportPath = dataPath.replacingOccurrences(of: ".perf.data", with: ".perf.txt")
        // A flat report of the hottest symbols (self time) and one with children (inclusive).
        let script = """
            perf report -i '\(dataPath)' --stdio --no-children --percent-limit 0.5 2>/dev/null | swift demangle --simplified > '\(reportPath)'; \
            perf report -i '\(dataPath)' --stdio --children --percent-limit 2 -g none 2>/dev/null | swift demangle --simplified > '\(reportPath.replacingOccurrences(of: ".perf.txt", with: ".perf-children.txt"))'
            """
        if let report = try? Child(executable: "/bin/sh", arguments: ["-c", script], logPath: dataPath + ".report.log") {
            report.waitForExit()
        }
        log("profile: \(reportPath)")
    }
}
