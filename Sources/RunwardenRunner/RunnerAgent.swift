import Foundation
import Logging
import RunwardenClient
import RunwardenCore
import ServiceLifecycle
import Synchronization

/// The host agent (SPEC §4): claims tasks it has the labels for, runs each as a child process,
/// heartbeats, stops what the server asks it to stop, and delivers every report through a
/// durable spool. A `Service`: on graceful shutdown it stops claiming, lets running tasks
/// finish within `shutdownGrace`, then stops them.
public struct RunnerAgent: Service {
    let configuration: RunnerConfiguration
    let client: RunwardenClient
    let logger: Logger
    private let spool: ReportSpool
    private let active = ActiveTasks()

    public init(configuration: RunnerConfiguration, logger: Logger = Logger(label: "runwarden.runner")) throws {
        self.configuration = configuration
        self.client = RunwardenClient(servers: configuration.servers, token: configuration.token)
        var logger = logger
        logger[metadataKey: "runner"] = "\(configuration.name)"
        self.logger = logger
        let spoolDirectory = URL(fileURLWithPath: configuration.workDir).appendingPathComponent("spool")
        self.spool = try ReportSpool(directory: spoolDirectory, client: client, runner: configuration.name, logger: logger)
    }

    public func run() async throws {
        logger.info(
            "runner started",
            metadata: ["labels": "\(configuration.labels.joined(separator: ","))", "concurrency": "\(configuration.concurrency)"])
        await withTaskGroup(of: Void.self) { background in
            background.addTask { await spool.runSender() }
            background.addTask { await heartbeatLoop() }

            await withDiscardingTaskGroup { executions in
                // Claiming stops at graceful shutdown; executions already started go on.
                let gate = ClaimGate()
                await withGracefulShutdownHandler {
                    await claimLoop(executions: &executions, gate: gate)
                } onGracefulShutdown: {
                    gate.close()
                }
                let running = await active.count
                logger.info("runner stopping: no new claims", metadata: ["running": "\(running)"])
                executions.addTask { await stopAfterShutdownGrace() }
            }
            await drainSpool(within: .seconds(10))
            background.cancelAll()
        }
        logger.info("runner stopped")
    }

    private func claimLoop(executions: inout DiscardingTaskGroup, gate: ClaimGate) async {
        var backoff = Duration.milliseconds(500)
        // Kept until a claim is answered: when the server took a task for a claim but its answer
        // was lost (the server died, the connection broke), asking again with the same id gets
        // that task instead of leaving it dispatched to nobody until its lease runs out.
        var claimID = UUID().uuidString
        while !Task.isCancelled, gate.isOpen {
            await active.waitForFreeSlot(limit: configuration.concurrency)
            let claim = Task { [client, configuration, claimID] in
                try await client.claim(
                    runner: configuration.name, labels: configuration.labels, wait: configuration.claimWaitSeconds, claimID: claimID)
            }
            guard gate.track(claim) else { return }
            do {
                let answer = try await claim.value
                claimID = UUID().uuidString
                guard let answer else { continue }
                backoff = .milliseconds(500)
                await active.setLease(seconds: answer.leaseS)
                let stop = await active.add(answer.task.id)
                let execution = TaskExecution(task: answer.task, configuration: configuration, spool: spool, stop: stop, logger: logger)
                executions.addTask {
                    await execution.run()
                    await active.remove(answer.task.id)
                }
            } catch {
                if Task.isCancelled || !gate.isOpen { return }
                // An error answer means nothing was claimed; any other failure may hide a taken claim.
                if case ClientError.server = error { claimID = UUID().uuidString }
                logger.warning("claim failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(10))
            }
        }
    }

    /// Keeps the leases of running tasks alive and stops the tasks the server names.
    private func heartbeatLoop() async {
        while !Task.isCancelled {
            // A third of the lease keeps it alive; at most 2 s so a cancel reaches the task quickly.
            let interval = Duration.milliseconds(min(2000, max(500, await active.leaseSeconds * 1000 / 3)))
            try? await Task.sleep(for: interval)
            let taskIDs = await active.ids
            guard !taskIDs.isEmpty else { continue }
            do {
                let answer = try await client.heartbeat(runner: configuration.name, taskIDs: taskIDs)
                await active.setLease(seconds: answer.leaseS)
                for taskID in answer.cancel {
                    logger.info("server asked to stop a task", metadata: ["task_id": "\(taskID)"])
                    await active.stop(taskID, .canceled)
                }
            } catch {
                logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func stopAfterShutdownGrace() async {
        let deadline = ContinuousClock.now + configuration.shutdownGrace
        while await active.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        let running = await active.count
        if running > 0 {
            logger.warning("shutdown grace over; stopping running tasks", metadata: ["running": "\(running)"])
            await active.stopAll(.shutdown)
        }
    }

    private func drainSpool(within limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while await spool.pendingCount > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        let left = await spool.pendingCount
        if left > 0 { logger.warning("reports left in the spool; they are sent when the runner starts again", metadata: ["count": "\(left)"]) }
    }
}

/// Closes claiming at graceful shutdown, cancelling a claim long-poll in flight.
final class ClaimGate: Sendable {
    private let state = Mutex<(open: Bool, claim: Task<ClaimAnswer?, any Error>?)>((true, nil))

    var isOpen: Bool { state.withLock { $0.open } }

    /// Remembers the claim in flight; false (and the claim cancelled) when already closed.
    func track(_ claim: Task<ClaimAnswer?, any Error>) -> Bool {
        let open = state.withLock { state in
            state.claim = claim
            return state.open
        }
        if !open { claim.cancel() }
        return open
    }

    func close() {
        let claim = state.withLock { state in
            state.open = false
            return state.claim
        }
        claim?.cancel()
    }
}

/// The tasks this runner is executing, their stop signals, and the free slots.
actor ActiveTasks {
    private var stops: [String: StopSignal] = [:]
    private var slotWaiters: [CheckedContinuation<Void, Never>] = []
    private(set) var leaseSeconds = 30

    var count: Int { stops.count }
    var ids: [String] { Array(stops.keys) }

    func add(_ taskID: String) -> StopSignal {
        let signal = StopSignal()
        stops[taskID] = signal
        return signal
    }

    func remove(_ taskID: String) {
        stops[taskID] = nil
        wakeSlotWaiters()
    }

    func stop(_ taskID: String, _ reason: StopReason) async { await stops[taskID]?.fire(reason) }

    func stopAll(_ reason: StopReason) async {
        for signal in stops.values { await signal.fire(reason) }
    }

    func setLease(seconds: Int) { leaseSeconds = max(1, seconds) }

    /// Returns when fewer than `limit` tasks run (or at once if the caller is cancelled).
    func waitForFreeSlot(limit: Int) async {
        while stops.count >= limit, !Task.isCancelled {
            await withTaskCancellationHandler {
                await withCheckedContinuation { slotWaiters.append($0) }
            } onCancel: {
                Task { await self.wakeSlotWaiters() }
            }
        }
    }

    private func wakeSlotWaiters() {
        let waiters = slotWaiters
        slotWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }
}
