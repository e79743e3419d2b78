import RunwardenCore

/// `runwarden logs RUN_ID [TASK_NAME] [--attempt N] [-f]` (SPEC §9) without the terminal: the
/// lines of one task's log, or of every task of a run, as events. Without `follow` it reads
/// what is stored (task after task) and ends; with `follow` it reads every task at once, each
/// until its attempt's output is complete, then moves on to the task's next attempt (a retry)
/// until the task has ended — unless an attempt was named — and ends with the run.
public struct LogFollower: Sendable {
    public enum Event: Sendable, Equatable {
        /// A line of a task's output, without its line break.
        case line(task: String, text: String)
        /// The server dropped this many bytes of the attempt's output here (`--log-max-bytes`).
        case dropped(task: String, bytes: Int64)
        /// Following moved on to the task's next attempt.
        case attempt(task: String, number: Int)
        /// `--log-retention` removed this attempt's log.
        case expired(task: String, attempt: Int)
    }

    public struct NoSuchTask: Error, CustomStringConvertible, Sendable {
        public var run: String
        public var task: String
        public var description: String { "run \(run) has no task named \(task)" }
    }

    public let client: RunwardenClient
    public let runID: String
    /// One task; nil for every task of the run.
    public let taskName: String?
    /// One attempt; nil for the latest (and, when following, the ones after it).
    public let attempt: Int?
    public let follow: Bool
    /// The longest long-poll, in seconds.
    let wait: Int
    /// A line longer than this (a server that never sends a line break) is cut into pieces.
    static let longestLine = 64 << 10

    public init(client: RunwardenClient, runID: String, taskName: String?, attempt: Int?, follow: Bool, wait: Int = 25) {
        self.client = client
        self.runID = runID
        self.taskName = taskName
        self.attempt = attempt
        self.follow = follow
        self.wait = wait
    }

    /// The events, as they come; cancelled when the consumer stops reading.
    public func events() -> AsyncThrowingStream<Event, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Event.self)
        let reading = Task {
            do {
                try await run(continuation)
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in reading.cancel() }
        return stream
    }

    typealias Emit = AsyncThrowingStream<Event, any Error>.Continuation

    func run(_ emit: Emit) async throws {
        var run = try await client.run(runID)
        let chosen = try selected(run)
        guard follow else {
            for task in chosen where task.attempt >= 1 {
                try await read(task, attempt: attempt ?? task.attempt, emit)
            }
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // A task's log is followed from when it has the attempt asked for (the latest: any).
            var started = Set<String>()
            while true {
                for task in chosen where !started.contains(task.id) {
                    guard let now = run.tasks?.first(where: { $0.id == task.id }), now.attempt >= max(attempt ?? 1, 1) else { continue }
                    started.insert(task.id)
                    group.addTask { try await followTask(now, emit) }
                }
                if started.count == chosen.count || run.isTerminal { break }
                run = try await client.nextVersion(of: run)
            }
            try await group.waitForAll()
        }
    }

    /// The tasks asked for, in the run's order.
    func selected(_ run: RunSnapshot) throws -> [TaskSnapshot] {
        let tasks = run.tasks ?? []
        guard let taskName else { return tasks }
        guard let task = tasks.first(where: { $0.name == taskName }) else { throw NoSuchTask(run: runID, task: taskName) }
        return [task]
    }

    /// Follows `task` from its current attempt (or the one asked for) across its retries.
    func followTask(_ task: TaskSnapshot, _ emit: Emit) async throws {
        var number = attempt ?? task.attempt
        while true {
            try await read(task, attempt: number, emit)
            if attempt != nil { return }
            // The next attempt, once the task has one; none once it has ended.
            var run = try await client.run(runID)
            while true {
                guard let now = run.tasks?.first(where: { $0.id == task.id }) else { return }
                if now.attempt > number { break }
                if now.status.isTerminal || run.isTerminal { return }
                run = try await client.nextVersion(of: run)
            }
            number += 1
            emit.yield(.attempt(task: task.name, number: number))
        }
    }

    /// Reads one attempt's log from its start: to its end when following, else what is stored.
    func read(_ task: TaskSnapshot, attempt number: Int, _ emit: Emit) async throws {
        var offset: Int64 = 0
        var lines = LineSplitter(longest: Self.longestLine)
        var backoff = Duration.milliseconds(250)
        while !Task.isCancelled {
            let page: RunwardenClient.LogPage
            do {
                page = try await client.log(taskID: task.id, attempt: number, offset: offset, wait: follow ? wait : nil)
            } catch ClientError.server(_, let envelope) where envelope.code == .logsExpired {
                emit.yield(.expired(task: task.name, attempt: number))
                return
            } catch let error as ClientError where follow && error.isTransient {
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
                continue
            }
            backoff = .milliseconds(250)
            if page.offset > offset {
                // The middle of the log was dropped: what came before it is a line of its own.
                if let rest = lines.flush() { emit.yield(.line(task: task.name, text: rest)) }
                emit.yield(.dropped(task: task.name, bytes: page.offset - offset))
            }
            for line in lines.feed(page.text) { emit.yield(.line(task: task.name, text: line)) }
            let progressed = page.nextOffset > offset
            offset = page.nextOffset
            if page.complete || (!follow && !progressed) {
                if let rest = lines.flush() { emit.yield(.line(task: task.name, text: rest)) }
                return
            }
            // Nothing new yet (the rest of a character, or a server that answers at once): not in a tight loop.
            if !progressed { try await Task.sleep(for: .milliseconds(250)) }
        }
    }
}

/// Text cut into lines at `\n` (a `\r` before it dropped), the unfinished last one held back
/// until its line break comes, or until it is longer than `longest` characters.
struct LineSplitter {
    let longest: Int
    private var partial = ""

    init(longest: Int) { self.longest = longest }

    mutating func feed(_ text: String) -> [String] {
        // Bytes, not Characters: "\r\n" is one Character, and splitting is linear this way.
        var pieces = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)[...]
        let last = pieces.removeLast()
        var lines: [String] = []
        for piece in pieces {
            var line = partial + String(decoding: piece, as: UTF8.self)
            partial = ""
            if line.utf8.last == UInt8(ascii: "\r") { line.removeLast() }
            lines.append(line)
        }
        partial += String(decoding: last, as: UTF8.self)
        while partial.utf8.count > longest, partial.count > longest {
            let cut = partial.index(partial.startIndex, offsetBy: longest)
            lines.append(String(partial[..<cut]))
            partial = String(partial[cut...])
        }
        return lines
    }

    /// The unfinished line, if any.
    mutating func flush() -> String? {
        defer { partial = "" }
        return partial.isEmpty ? nil : partial
    }
}

extension RunwardenClient {
    /// Long-polls for the run's next version. A server that is restarting or briefly
    /// unreachable is waited out (with backoff) rather than ending the wait with an error.
    public func nextVersion(of run: RunSnapshot, tasks: Bool = true) async throws -> RunSnapshot {
        var backoff = Duration.milliseconds(250)
        while true {
            do {
                return try await self.run(run.id, afterVersion: run.version, wait: 25, tasks: tasks)
            } catch let error as ClientError where error.isTransient {
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }
}
