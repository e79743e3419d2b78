import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import RunwardenCore
import RunwardenStore
import ServiceLifecycle

/// Delivers the outbox (SPEC §3): signed POSTs, several in flight, each attempt recorded.
/// Retries network errors, timeouts, 5xx, 408 and 429 on the configured schedule with jitter
/// (or after `Retry-After`); other 4xx fail at once; `410 Gone` disables the subscription.
/// A run's status never depends on any of this.
public struct WebhookDispatcher: Service {
    public struct Settings: Sendable {
        /// Delays before the 2nd, 3rd, … attempt, in milliseconds.
        public var schedule: [Int64]
        public static let standardAttemptTimeout: Duration = .seconds(15)
        public var attemptTimeout = standardAttemptTimeout
        /// Which addresses a delivery may connect to (checked after resolving).
        public var egress = EgressPolicy.standard
        public var maxInFlight = 128
        /// Attempts to one URL at a time at most, each of a different run: a run's events go
        /// one after another, so a receiver gets them in `seq` order (while none fails). A URL
        /// starts at one and doubles its share with each success, back to one at a failure: a
        /// receiver that is down or never answers holds one slot while the rest keep flowing.
        public var maxInFlightPerURL = 32
        /// How often due retries are looked for when nothing wakes the dispatcher.
        public var pollInterval: Duration = .seconds(1)

        public init(schedule: [Int64]) { self.schedule = schedule }
    }

    let service: RunService
    let settings: Settings
    private let inFlight = InFlightDeliveries()

    public init(service: RunService, settings: Settings) {
        self.service = service
        self.settings = settings
    }

    public func run() async throws {
        guard await service.schema.wait() else { return }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(5))
        // A refused connection is one failed attempt, not five seconds of reconnecting: the
        // retry schedule is ours to apply.
        configuration.connectionPool.retryConnectionEstablishment = false
        // As many connections to one receiver as attempts may be in flight to it.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = settings.maxInFlightPerURL
        let http = WebhookEgress(policy: settings.egress, configuration: configuration)
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                let generation = await service.hub.generation(of: .deliveries)
                do {
                    let now = service.clock()
                    // Held past the attempt's own timeout; the attempt's verdict replaces it.
                    let leaseEnd = now.adding(saturatingMilliseconds: settings.attemptTimeout.saturatingMilliseconds)
                        .adding(saturatingMilliseconds: 30_000)
                    // The oldest due delivery of each URL; then, for a URL whose receiver has
                    // earned more than one slot, the heads of its other runs.
                    for head in try await service.dueDeliveries(now: now, limit: 200) {
                        let slots = await inFlight.freeSlots(for: head.url, limits: settings)
                        guard slots > 0 else { continue }
                        var batch = [head]
                        if slots > 1 {
                            // Runs with an attempt in flight show their next event as due too,
                            // and are passed over below: ask for enough heads to fill the slots.
                            let busy = await inFlight.count(for: head.url)
                            batch += try await service.dueDeliveries(url: head.url, now: now, limit: slots + busy)
                                .filter { $0.runID != head.runID }
                        }
                        for delivery in batch {
                            guard await inFlight.start(delivery, limits: settings) else { continue }
                            // Leased in the attempt's own task: concurrent leases share commits
                            // (one at a time, each waiting for its own, was the dispatcher's limit).
                            group.addTask {
                                await leaseAndAttempt(delivery, now: now, until: leaseEnd, http: http)
                                await service.hub.notify([.deliveries])
                            }
                        }
                    }
                } catch {
                    service.logger.error("could not read the webhook outbox", metadata: ["error": "\(error)"])
                }
                await cancelWhenGracefulShutdown {
                    await service.hub.wait(for: .deliveries, after: generation, timeout: settings.pollInterval)
                }
            }
        }
        await http.shutdown()
    }

    /// The read that found `delivery` may be stale, and other nodes dispatch too: only the
    /// lease decides who attempts it.
    func leaseAndAttempt(_ delivery: Delivery, now: Timestamp, until leaseEnd: Timestamp, http: WebhookEgress) async {
        do {
            guard let lease = try await service.leaseDelivery(id: delivery.id, now: now, until: leaseEnd) else {
                await inFlight.finish(delivery, succeeded: nil)
                return
            }
            let verdict = await attempt(delivery, secret: lease.secret, http: http)
            await inFlight.finish(delivery, succeeded: verdict == .succeeded)
        } catch {
            service.logger.error("could not lease a delivery", metadata: ["delivery_id": "\(delivery.id)", "error": "\(error)"])
            await inFlight.finish(delivery, succeeded: nil)
        }
    }

    /// One attempt: sign, POST, record what happened and what comes next (returned).
    @discardableResult
    func attempt(_ delivery: Delivery, secret: String?, http: WebhookEgress) async -> DeliveryVerdict {
        let started = ContinuousClock.now
        let now = service.clock()
        let unixSeconds = now.milliseconds / 1000
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Runwarden-Webhooks/1")
        request.headers.add(name: "webhook-id", value: delivery.eventID)
        request.headers.add(name: "webhook-timestamp", value: String(unixSeconds))
        if let secret, let signature = WebhookSigner.signature(id: delivery.eventID, timestamp: unixSeconds, body: delivery.payload, secret: secret) {
            request.headers.add(name: "webhook-signature", value: signature)
        }
        request.body = .bytes(ByteBuffer(bytes: delivery.payload))

        var statusCode: Int?
        var retryAfter: String?
        var failure: String?
        do {
            // The whole exchange, body included, is inside the timeout: AsyncHTTPClient's own
            // deadline ends with the response head, so a receiver trickling its body would
            // otherwise hold the attempt (and its URL's slot) for as long as it liked.
            (statusCode, retryAfter) = try await withAttemptTimeout(settings.attemptTimeout) { [request] in
                let client = try await http.client(for: delivery.url)  // resolved and checked within the timeout too
                let response = try await client.execute(request, timeout: .milliseconds(settings.attemptTimeout.saturatingMilliseconds))
                try await Self.discard(response.body, upTo: Self.responseBodyLimit)
                return (Int(response.status.code), response.headers.first(name: "Retry-After"))
            }
        } catch {
            failure = Self.describe(error)
        }
        let latency = started.duration(to: .now)
        let latencyMs = Int(clamping: latency.saturatingMilliseconds)
        let verdict = Self.verdict(
            statusCode: statusCode, retryAfter: retryAfter, attemptsSoFar: delivery.attempts.count + 1, now: now,
            schedule: settings.schedule)
        if failure == nil, let statusCode, !(200..<300).contains(statusCode) { failure = "HTTP \(statusCode)" }
        let attempt = DeliveryAttempt(at: now, statusCode: statusCode, latencyMs: latencyMs, error: failure)
        do {
            try await service.recordAttempt(deliveryID: delivery.id, attempt, verdict: verdict)
        } catch {
            service.logger.error("could not record a delivery attempt", metadata: ["delivery_id": "\(delivery.id)", "error": "\(error)"])
        }
        var metadata: Logger.Metadata = ["delivery_id": "\(delivery.id)", "type": "\(delivery.type)", "verdict": "\(verdict)"]
        // A runner event's delivery has a lane, not a run.
        if let runID = Outbox.runID(ofLane: delivery.runID) { metadata["run_id"] = "\(runID)" } else { metadata["lane"] = "\(delivery.runID)" }
        if let failure { metadata["error"] = "\(failure)" }
        service.logger.log(level: failure == nil ? .debug : .info, "webhook attempt", metadata: metadata)
        service.metrics.recordDelivery(outcome: verdict.outcome, duration: latency)
        return verdict
    }

    /// What follows an attempt: `attemptsSoFar` counts this one.
    static func verdict(statusCode: Int?, retryAfter: String?, attemptsSoFar: Int, now: Timestamp, schedule: [Int64]) -> DeliveryVerdict {
        if let statusCode {
            if (200..<300).contains(statusCode) { return .succeeded }
            if statusCode == 410 { return .failedAndDisable(reason: "the endpoint answered 410 Gone") }
            let retryable = statusCode >= 500 || statusCode == 408 || statusCode == 429
            if !retryable { return .failed }
        }
        guard attemptsSoFar >= 1, attemptsSoFar <= schedule.count else { return .failed }
        var delay = RetrySchedule.jittered(schedule[attemptsSoFar - 1])
        if let retryAfter, let requested = RetryAfter.milliseconds(retryAfter, now: now) { delay = requested }
        return .retry(at: now.adding(saturatingMilliseconds: delay))
    }

    /// How much of a response body is read (and thrown away) before the connection is dropped:
    /// nothing in it matters, but reading a short one to its end lets the connection be reused.
    static let responseBodyLimit = 64 * 1024

    static func discard(_ body: HTTPClientResponse.Body, upTo limit: Int) async throws {
        var remaining = limit
        for try await chunk in body {
            remaining -= chunk.readableBytes
            if remaining < 0 { return }  // leaving the loop cancels the rest of the body
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            default: return "\(error)"
            }
        }
        if error is AttemptTimedOut { return "timed out" }
        if error is DestinationNotAllowed { return "destination_not_allowed" }
        return String(describing: error)
    }
}

/// Which deliveries are being attempted now — overall, per URL, and per URL and run (one at a
/// time, so a run's events keep their order) — and how many slots each URL has earned.
actor InFlightDeliveries {
    private struct Lane: Hashable {
        let url: String
        let runID: String
    }

    private var ids: Set<String> = []
    private var perURL: [String: Int] = [:]
    private var lanes: Set<Lane> = []
    /// Slots a URL may use: 1 (absent) until its receiver succeeds, doubled by each success up to
    /// `maxInFlightPerURL`, back to 1 at a failure. Kept only for URLs above 1.
    private var earned: [String: Int] = [:]

    /// Attempts in flight to `url`.
    func count(for url: String) -> Int { perURL[url, default: 0] }

    func freeSlots(for url: String, limits: WebhookDispatcher.Settings) -> Int {
        let allowed = min(earned[url] ?? 1, limits.maxInFlightPerURL)
        return max(0, min(allowed - perURL[url, default: 0], limits.maxInFlight - ids.count))
    }

    func start(_ delivery: Delivery, limits: WebhookDispatcher.Settings) -> Bool {
        let lane = Lane(url: delivery.url, runID: delivery.runID)
        guard !ids.contains(delivery.id), !lanes.contains(lane), freeSlots(for: delivery.url, limits: limits) > 0 else { return false }
        ids.insert(delivery.id)
        lanes.insert(lane)
        perURL[delivery.url, default: 0] += 1
        return true
    }

    /// - Parameter succeeded: the attempt's outcome; nil when no attempt was made.
    func finish(_ delivery: Delivery, succeeded: Bool?) {
        ids.remove(delivery.id)
        lanes.remove(Lane(url: delivery.url, runID: delivery.runID))
        perURL[delivery.url, default: 1] -= 1
        if perURL[delivery.url] == 0 { perURL[delivery.url] = nil }
        switch succeeded {
        case true?: earned[delivery.url] = min(2 * (earned[delivery.url] ?? 1), 1 << 16)
        case false?: earned[delivery.url] = nil
        case nil: break
        }
    }
}

extension DeliveryVerdict {
    /// The `outcome` label of `runwarden_webhook_deliveries_total`.
    var outcome: String {
        switch self {
        case .succeeded: "succeeded"
        case .retry: "retry"
        case .failed, .failedAndDisable: "failed"
        }
    }
}
