import HeapModule
import ServiceLifecycle

/// Wakes long-pollers when a change commits: the writer calls `notify`, and every waiter on
/// that topic returns at once — no sleep loop over the database.
///
/// Each topic has a generation counter. A waiter reads the generation before it reads the
/// database, then waits for a generation after it, so a change that commits between the two
/// is never missed.
public actor ChangeHub {
    public enum Topic: Hashable, Sendable {
        /// A change of one run (its snapshot and its events).
        case run(String)
        /// Any new event of any run (`GET /v1/events`).
        case events
        /// Work may have become claimable: a task queued, a lock released.
        case claims
        /// The webhook outbox may hold new or newly due deliveries.
        case deliveries
        /// Output of the task arrived (`GET /v1/tasks/{id}/logs?wait=`, its stream).
        case log(String)
        /// A runner's record changed other than by its own contact — drained or resumed, said
        /// goodbye, went silent: contacts written before it are written again (`ContactLedger`).
        case runners
    }

    private var generations: [Topic: UInt64] = [:]
    private var waiters: [Topic: [UInt64: CheckedContinuation<Void, Never>]] = [:]
    private var lastWaiterID: UInt64 = 0
    /// When each parked waiter's timeout runs out, earliest first. One timer task serves them
    /// all (a task per waiter cost ~1 KiB each with 10,000 long-polls parked); entries of
    /// waiters woken earlier stay until their time and are skipped then, or are swept out
    /// when they outnumber the parked waiters (many short long-polls woken by changes).
    private var timeouts = Heap<Timeout>()
    private var parkedTotal = 0
    private var timer: (deadline: ContinuousClock.Instant, task: Task<Void, Never>)?

    private struct Timeout: Comparable {
        let deadline: ContinuousClock.Instant
        let topic: Topic
        let id: UInt64
        static func < (lhs: Self, rhs: Self) -> Bool { lhs.deadline < rhs.deadline }
        static func == (lhs: Self, rhs: Self) -> Bool { lhs.deadline == rhs.deadline && lhs.id == rhs.id }
    }

    public init() {}

    public func generation(of topic: Topic) -> UInt64 { generations[topic, default: 0] }

    public func notify(_ topics: some Sequence<Topic> & Sendable) {
        for topic in topics {
            generations[topic, default: 0] &+= 1
            if let parked = waiters.removeValue(forKey: topic) {
                parkedTotal -= parked.count
                for continuation in parked.values { continuation.resume() }
            }
        }
    }

    /// Returns when `topic` moves past `generation`, when `timeout` passes, when the calling
    /// task is cancelled, when the server starts shutting down, or when the long-poll's
    /// client went away (`WaitInterrupt.current` fires) — whichever comes first.
    public func wait(for topic: Topic, after generation: UInt64, timeout: Duration) async {
        guard generations[topic, default: 0] == generation, timeout > .zero else { return }
        let interrupt = WaitInterrupt.current
        guard interrupt?.isFired != true else { return }
        lastWaiterID &+= 1
        let id = lastWaiterID
        schedule(Timeout(deadline: .now + timeout, topic: topic, id: id))
        // Every wake-up hops onto this actor, so it runs only after the continuation below is
        // parked: `wake` always finds it, or finds it already resumed.
        interrupt?.onFire { Task { await self.wake(topic, id) } }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    waiters[topic, default: [:]][id] = continuation
                    parkedTotal += 1
                }
            } onCancel: {
                Task { await self.wake(topic, id) }
            }
        } onGracefulShutdown: {
            Task { await self.wake(topic, id) }
        }
        interrupt?.onFire(nil)
    }

    private func schedule(_ timeout: Timeout) {
        if timeouts.count > 1024 + 2 * parkedTotal {
            timeouts = Heap(timeouts.unordered.filter { waiters[$0.topic]?[$0.id] != nil })
        }
        timeouts.insert(timeout)
        if let timer, timer.deadline <= timeout.deadline { return }
        startTimer(until: timeout.deadline)
    }

    private func startTimer(until deadline: ContinuousClock.Instant) {
        timer?.task.cancel()
        let task = Task { [weak self] in
            guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
            await self?.timeoutsRanOut()
        }
        timer = (deadline, task)
    }

    private func timeoutsRanOut() {
        timer = nil
        let now = ContinuousClock.now
        while let earliest = timeouts.min, earliest.deadline <= now {
            timeouts.removeMin()
            wake(earliest.topic, earliest.id)
        }
        if let next = timeouts.min { startTimer(until: next.deadline) }
    }

    /// Number of waiters parked right now (for tests and metrics).
    public var parkedCount: Int { parkedTotal }

    /// Timeouts still in the heap, stale ones included (for tests).
    var scheduledTimeouts: Int { timeouts.count }

    /// The kinds of topic, as `/metrics` labels them.
    static let topicKinds = ["run", "events", "claims", "deliveries", "log"]

    /// Waiters parked right now by kind of topic: run long-polls and run streams wait on
    /// `run`, event long-polls and the global stream on `events`, claim long-polls on `claims`,
    /// log long-polls and log streams on `log`.
    func parkedByKind() -> [String: Int] {
        var counts: [String: Int] = [:]
        for (topic, parked) in waiters {
            let kind: String
            switch topic {
            case .run: kind = "run"
            case .events: kind = "events"
            case .claims: kind = "claims"
            case .deliveries: kind = "deliveries"
            case .log: kind = "log"
            case .runners: kind = "runners"
            }
            counts[kind, default: 0] += parked.count
        }
        return counts
    }

    private func wake(_ topic: Topic, _ id: UInt64) {
        guard let continuation = waiters[topic]?.removeValue(forKey: id) else { return }
        parkedTotal -= 1
        if waiters[topic]?.isEmpty == true { waiters[topic] = nil }
        continuation.resume()
    }
}
