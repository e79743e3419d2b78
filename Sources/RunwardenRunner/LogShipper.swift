import Foundation
import Logging
import RunwardenClient
import RunwardenCore

/// Ships every attempt's log file to the server in chunks (SPEC §9). The file is the spool: a
/// task writes it at its own speed and never waits for the network; the shipper reads what is
/// new a few times a second and sends it, batched, at the offset the server acknowledged.
///
/// A marker file next to each log (`TASK.ATTEMPT.ship`) says it is still being shipped; a runner
/// that restarts ships what is left of those logs (their processes are gone: the last chunk is
/// final). The server answers where its copy ends, so nothing is sent twice or skipped.
actor LogShipper {
    struct Key: Hashable, Sendable {
        let taskID: String
        let attempt: Int
    }

    private struct Entry {
        let file: URL
        var offset: Int64 = 0
        /// The process ended: once every byte is shipped, the last chunk says so.
        var finished = false
        var notBefore = ContinuousClock.now
        var backoff = Duration.milliseconds(250)
    }

    private let directory: URL
    private let client: RunwardenClient
    private let runner: String
    private let logger: Logger
    private var entries: [Key: Entry] = [:]
    /// Logs a pass is shipping right now: one sender per log at a time.
    private var inFlight: Set<Key> = []

    /// Bytes per request: well under the server's default `--max-body` (1 MiB).
    static let chunkBytes = 512 << 10
    /// How often new output is looked for: output reaches the server well within 2 s.
    static let interval = Duration.milliseconds(250)

    init(logDirectory: URL, client: RunwardenClient, runner: String, logger: Logger) {
        directory = logDirectory
        self.client = client
        self.runner = runner
        self.logger = logger
        // Logs a previous life of this runner had not finished shipping.
        let markers = (try? FileManager.default.contentsOfDirectory(at: logDirectory, includingPropertiesForKeys: nil)) ?? []
        for marker in markers where marker.pathExtension == "ship" {
            guard let key = Self.key(marker.deletingPathExtension().lastPathComponent) else { continue }
            entries[key] = Entry(file: Self.logFile(key, in: logDirectory), finished: true)
        }
    }

    static func logFile(_ key: Key, in directory: URL) -> URL {
        directory.appendingPathComponent("\(key.taskID).\(key.attempt).log")
    }

    private static func marker(_ key: Key, in directory: URL) -> URL {
        directory.appendingPathComponent("\(key.taskID).\(key.attempt).ship")
    }

    /// `TASK_ID.ATTEMPT` back to its key.
    private static func key(_ name: String) -> Key? {
        guard let dot = name.lastIndex(of: "."), let attempt = Int(name[name.index(after: dot)...]), attempt >= 1 else { return nil }
        let taskID = String(name[..<dot])
        return WorkspaceName.isValid(taskID) ? Key(taskID: taskID, attempt: attempt) : nil
    }

    /// Starts shipping the attempt's log (its file may not exist yet).
    func start(_ key: Key) {
        do {
            try DurableFile.save(Data(), to: Self.marker(key, in: directory))
        } catch {
            logger.warning("cannot mark a log for shipping; it is shipped unless the runner restarts", metadata: ["error": "\(error)"])
        }
        entries[key] = Entry(file: Self.logFile(key, in: directory))
    }

    /// The attempt's process ended: nothing more is written to its log. Ships the rest at once,
    /// waiting up to `limit` for the server to take it — so a run that ends has its logs whole
    /// when the server could take them (the terminal report goes after this).
    func finish(_ key: Key, within limit: Duration = .seconds(5)) async {
        entries[key]?.finished = true
        entries[key]?.notBefore = .now
        let deadline = ContinuousClock.now + limit
        while let entry = entries[key], ContinuousClock.now < deadline {
            if inFlight.contains(key) || entry.notBefore > .now {
                try? await Task.sleep(for: .milliseconds(20))
            } else {
                await shipAvailable(key, entry)
            }
        }
    }

    /// Logs not yet shipped whole.
    var pendingCount: Int { entries.count }

    /// Ships until cancelled.
    func run() async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            for (key, entry) in entries where entry.notBefore <= now && !inFlight.contains(key) {
                await shipAvailable(key, entry)
            }
            try? await Task.sleep(for: Self.interval)
        }
    }

    /// Sends what is new in one log, a chunk at a time, and records what the server said.
    private func shipAvailable(_ key: Key, _ start: Entry) async {
        inFlight.insert(key)
        defer { inFlight.remove(key) }
        var entry = start
        while !Task.isCancelled {
            let size = Self.size(of: entry.file)
            let count = Int(min(Int64(Self.chunkBytes), max(0, size - entry.offset)))
            let isLast = entry.finished && entry.offset + Int64(count) >= size
            guard count > 0 || isLast else { break }
            let bytes = count > 0 ? Self.read(entry.file, at: entry.offset, count: count) : []
            do {
                switch try await client.shipLog(
                    taskID: key.taskID, attempt: key.attempt, offset: entry.offset, bytes: bytes[...], final: isLast, runner: runner)
                {
                case .next(let next):
                    entry.offset = next
                    if isLast, next >= size { return done(key) }
                case .resumeAt(let expected):
                    // The server has more than this file (a resend after a restart) or less.
                    entry.offset = expected
                    if entry.finished, expected >= size, count == 0 { return done(key) }
                }
                entry.backoff = .milliseconds(250)
            } catch let error as ClientError where !error.isTransient {
                logger.warning(
                    "the server refuses this log; it stays on this host only",
                    metadata: ["task_id": "\(key.taskID)", "attempt": "\(key.attempt)", "error": "\(error)"])
                return done(key)
            } catch {
                entry.notBefore = .now + entry.backoff
                entry.backoff = min(entry.backoff * 2, .seconds(5))
                break
            }
        }
        entries[key]?.offset = entry.offset
        entries[key]?.notBefore = entry.notBefore
        entries[key]?.backoff = entry.backoff
    }

    private func done(_ key: Key) {
        entries[key] = nil
        try? FileManager.default.removeItem(at: Self.marker(key, in: directory))
    }

    private static func size(of file: URL) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    private static func read(_ file: URL, at offset: Int64, count: Int) -> [UInt8] {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return [] }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: UInt64(offset))) != nil, let data = try? handle.read(upToCount: count) else { return [] }
        return [UInt8](data)
    }
}
