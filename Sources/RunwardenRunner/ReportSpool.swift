import Foundation
import Logging
import RunwardenClient
import RunwardenCore

/// A durable, ordered queue of status reports. Each report is written to disk (and fsynced)
/// before anything tries to send it; one sender delivers them in order and deletes each file
/// only once the server has taken it — so a server that is down, or a runner that restarts,
/// loses nothing.
actor ReportSpool {
    private let directory: URL
    private let client: RunwardenClient
    private let runner: String
    private let logger: Logger
    private var nextNumber: Int
    private var wakeSender: AsyncStream<Void>.Continuation?
    private let wakeups: AsyncStream<Void>

    init(directory: URL, client: RunwardenClient, runner: String, logger: Logger) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.client = client
        self.runner = runner
        self.logger = logger
        let existing = try Self.pendingFiles(in: directory)
        nextNumber = (existing.last.flatMap { Int($0.deletingPathExtension().lastPathComponent) } ?? 0) + 1
        (wakeups, wakeSender) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Writes the report to disk; returns once it is durable. The sender delivers it later.
    func enqueue(taskID: String, body: JSONValue) throws {
        let name = String(format: "%020d.json", nextNumber)
        nextNumber += 1
        let record = JSONValue.object(["task_id": .string(taskID), "body": body])
        try DurableFile.save(record.encoded(), to: directory.appendingPathComponent(name))
        wakeSender?.yield()
    }

    /// Number of reports not yet taken by the server.
    var pendingCount: Int { (try? Self.pendingFiles(in: directory).count) ?? 0 }

    /// Delivers spooled reports in order until cancelled. Transient failures (server down, 5xx)
    /// are retried with backoff; a report the server refuses for good is logged and dropped.
    func runSender() async {
        var backoff = Duration.milliseconds(200)
        var iterator = wakeups.makeAsyncIterator()
        while !Task.isCancelled {
            guard let file = (try? Self.pendingFiles(in: directory))?.first else {
                _ = await iterator.next()
                continue
            }
            switch await deliver(file) {
            case .done:
                try? FileManager.default.removeItem(at: file)
                backoff = .milliseconds(200)
            case .retryLater:
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    private enum Delivery { case done, retryLater }

    private func deliver(_ file: URL) async -> Delivery {
        guard let data = try? Data(contentsOf: file), let record = try? JSONValue.parse(data),
            case .string(let taskID) = record["task_id"] ?? .null, let body = record["body"]
        else {
            logger.error("dropping an unreadable spooled report", metadata: ["file": "\(file.lastPathComponent)"])
            return .done
        }
        do {
            let answer = try await client.report(taskID: taskID, body: body, runner: runner)
            logger.debug("report delivered", metadata: ["task_id": "\(taskID)", "applied": "\(answer.applied)"])
            return .done
        } catch let error as ClientError where error.isTransient || Self.isAuthProblem(error) {
            logger.warning("report not delivered yet; will retry", metadata: ["task_id": "\(taskID)", "error": "\(error)"])
            return .retryLater
        } catch {
            logger.error("server refused a report; dropping it", metadata: ["task_id": "\(taskID)", "error": "\(error)"])
            return .done
        }
    }

    /// A wrong or rotated token is fixed by an operator, not by dropping the runner's reports.
    private static func isAuthProblem(_ error: ClientError) -> Bool {
        if case .server(let status, _) = error { return status == 401 || status == 403 }
        return false
    }

    private static func pendingFiles(in directory: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }
}
