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
    /// Sent with every claim and heartbeat: what the registry shows of this runner (SPEC §8).
    let facts: RunwardenClient.RunnerFacts
    private let spool: ReportSpool
    private let ledger: ProcessGroupLedger
    private let shipper: LogShipper
    private let active = ActiveTasks()

    public init(configuration: RunnerConfiguration, logger: Logger = Logger(label: "runwarden.runner")) throws {
        self.configuration = configuration
        self.client = RunwardenClient(
            servers: configuration.servers, token: configuration.token, http: try RunwardenClient.http(caFile: configuration.caFile))
        var logger = logger
        logger[metadataKey: "runner"] = "\(configuration.name)"
        self.logger = logger
        facts = .init(version: Release.version, hostname: ProcessInfo.processInfo.hostName, concurrency: configuration.concurrency)
        let spoolDirectory = URL(fileURLWithPath: configuration.workDir).appendingPathComponent("spool")
        self.spool = try ReportSpool(directory: spoolDirectory, client: client, runner: configuration.name, logger: logger)
        self.ledger = try ProcessGroupLedger(workDir: configuration.workDir, logger: logger)
        self.shipper = LogShipper(
            logDirectory: URL(fileURLWithPath: configuration.workDir).appendingPathComponent("logs"), client: client,
            runner: configuration.name, logger: logger)
    }

    public func run() async throws {
        logger.info(
            "runner started",
            metadata: ["labels": "\(configuration.labels.joined(separator: ","))", "concurrency": "\(configuration.concurrency)"])
        // Before claiming: a task of a previous life still running here would meet the new ones
        // in their workspaces, and the server has long given it to someone else.
        await ledger.stopLeftovers(grace: configuration.killGrace)
        await withTaskGroup(of: Void.self) { background in
            background.addTask { await spool.runSender() }
            background.addTask { await shipper.run() }
            background.addTask { await heartbeatLoop() }
            background.addTask { await leaseWatch() }

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
        await sayGoodbye()
        logger.info("runner stopped")
    }

    /// Tells the server this runner stops on purpose, so it shows `offline` at once rather than
    /// `lost` a lease later. Best effort: a server that cannot be reached sees it go silent.
    private func sayGoodbye() async {
        do {
            _ = try await client.goodbye(runner: configuration.name)
        } catch {
            logger.warning("could not say goodbye to the server; it will see this runner go silent", metadata: ["error": "\(error)"])
        }
    }

    private func claimLoop(executions: inout DiscardingTaskGroup, gate: ClaimGate) async {
        var backoff = Duration.milliseconds(500)
        // Kept until a claim is answered: when the server took a task for a claim but its answer
        // was lost (the server died, the connection broke), asking again with the same id gets
        // that task instead of leaving it dispatched to nobody until its lease runs out.
        var claimID = UUID().uuidString
        var draining = false
        while !Task.isCancelled, gate.isOpen {
            await active.waitForFreeSlot(limit: configuration.concurrency)
            let asked = ContinuousClock.now
            let claim = Task { [client, configuration, claimID, facts] in
                try await client.claim(
                    runner: configuration.name, labels: configuration.labels, wait: configuration.claimWaitSeconds, claimID: claimID,
                    facts: facts)
            }
            guard gate.track(claim) else { return }
            do {
                let result = try await claim.value
                claimID = UUID().uuidString
                if (result == .draining) != draining {
                    draining = result == .draining
                    let running = await active.count
                    if draining {
                        logger.notice("runner is draining: no new tasks until it is resumed; running tasks go on", metadata: ["running": "\(running)"])
                    } else {
                        logger.notice("runner resumed: taking tasks again")
                    }
                }
                guard case .task(let answer) = result else {
                    // The server holds a claim for its wait; one that answers at once is not asked again at once.
                    if ContinuousClock.now - asked < .seconds(1) { try? await Task.sleep(for: .seconds(1)) }
                    continue
                }
                backoff = .milliseconds(500)
                let stop = await active.add(answer.task.id, leaseSeconds: answer.leaseS)
                let execution = TaskExecution(
                    task: answer.task, configuration: configuration, spool: spool, ledger: ledger, shipper: shipper, stop: stop,
                    serverURL: client.currentServer, logger: logger)
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
            let lease = await active.leaseSeconds
            try? await Task.sleep(for: .milliseconds(min(2000, max(500, lease * 1000 / 3))))
            let taskIDs = await active.ids
            guard !taskIDs.isEmpty else { continue }
            let sentAt = ContinuousClock.now
            do {
                // A heartbeat that hangs longer than the lease is no use; give the next one its chance.
                let answer = try await client.heartbeat(runner: configuration.name, taskIDs: taskIDs, facts: facts, timeout: .seconds(lease))
                await active.renew(taskIDs, at: sentAt, leaseSeconds: answer.leaseS)
                for taskID in answer.cancel {
                    logger.info("server asked to stop a task", metadata: ["task_id": "\(taskID)"])
                    await active.stop(taskID, .canceled)
                }
            } catch {
                logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Stops the tasks whose lease ran out without a successful heartbeat (SPEC §6): the server
    /// has handed them to another runner or failed them, so running on here would only do the
    /// work twice — or clash with the new attempt in its workspace.
    private func leaseWatch() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            for taskID in await active.takeExpired(at: ContinuousClock.now) {
                logger.warning("no heartbeat got through for a whole lease; stopping the task", metadata: ["task_id": "\(taskID)"])
                await active.stop(taskID, .leaseLost)
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

    /// Gives the spooled reports and the logs not yet shipped `limit` to reach the server.
    private func drainSpool(within limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while await spool.pendingCount + shipper.pendingCount > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        let left = await spool.pendingCount
        if left > 0 { logger.warning("reports left in the spool; they are sent when the runner starts again", metadata: ["count": "\(left)"]) }
        let logs = await shipper.pendingCount
        if logs > 0 { logger.warning("task logs not shipped whole; they are shipped when the runner starts again", metadata: ["count": "\(logs)"]) }
    }
}

/// Closes claiming at graceful shutdown, cancelling a claim long-poll in flight.
final class ClaimGate: Sendable {
    private let state = Mutex<(open: Bool, claim: Task<RunwardenClient.ClaimResult, any Error>?)>((true, nil))

    var isOpen: Bool { state.withLock { $0.open } }

    /// Remembers the claim in flight; false (and the claim cancelled) when already closed.
    func track(_ claim: Task<RunwardenClient.ClaimResult, any Error>) -> Bool {
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

/// The tasks this runner is executing, their stop signals, when the server last renewed
/// their leases, and the free slots.
actor ActiveTasks {
    private var stops: [String: StopSignal] = [:]
    private var renewedAt: [String: ContinuousClock.Instant] = [:]
    private var slotWaiters: [CheckedContinuation<Void, Never>] = []
    private(set) var leaseSeconds = 30

    var count: Int { stops.count }
    var ids: [String] { Array(stops.keys) }

    /// A task just claimed: the claim's answer started its lease.
    func add(_ taskID: String, leaseSeconds: Int) -> StopSignal {
        setLease(seconds: leaseSeconds)
        let signal = StopSignal()
        stops[taskID] = signal
        renewedAt[taskID] = .now
        return signal
    }

    func remove(_ taskID: String) {
        stops[taskID] = nil
        renewedAt[taskID] = nil
        wakeSlotWaiters()
    }

    /// A heartbeat sent at `instant` for these tasks was answered: the server renewed their
    /// leases no earlier than that.
    func renew(_ taskIDs: [String], at instant: ContinuousClock.Instant, leaseSeconds: Int) {
        setLease(seconds: leaseSeconds)
        for taskID in taskIDs { if let last = renewedAt[taskID] { renewedAt[taskID] = max(last, instant) } }
    }

    /// Tasks whose lease, counted from their last renewal, has run out by `now` — each named
    /// once: it is no longer renewed (its stop is under way).
    func takeExpired(at now: ContinuousClock.Instant) -> [String] {
        let lease = Duration.seconds(leaseSeconds)
        let expired = renewedAt.filter { now - $0.value >= lease }.map(\.key)
        for taskID in expired { renewedAt[taskID] = nil }
        return expired
    }

    func stop(_ taskID: String, _ reason: StopReason) async { await stops[taskID]?.fire(reason) }

    func stopAll(_ reason: StopReason) async {
        for signal in stops.values { await signal.fire(reason) }
    }

    /// The server's `lease_s`, kept within 1 s … a day whatever it answers.
    private func setLease(seconds: Int) { leaseSeconds = ServerValue.clamp(seconds, 1...ServerValue.longestWait) }

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
