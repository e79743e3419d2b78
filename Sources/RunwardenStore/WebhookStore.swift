import Foundation
import RunwardenCore

/// A webhook subscription (SPEC §3).
public struct Webhook: Sendable, Equatable {
    public var id: String
    public var url: String
    public var events: [String]
    public var secret: String
    public var description: String?
    public var isActive: Bool
    public var disabledReason: String?
    public var createdAt: Timestamp

    public init(
        id: String, url: String, events: [String], secret: String, description: String?, isActive: Bool = true,
        disabledReason: String? = nil, createdAt: Timestamp
    ) {
        self.id = id
        self.url = url
        self.events = events
        self.secret = secret
        self.description = description
        self.isActive = isActive
        self.disabledReason = disabledReason
        self.createdAt = createdAt
    }
}

/// One try to deliver an event.
public struct DeliveryAttempt: Sendable, Equatable, Codable {
    public var at: Timestamp
    public var statusCode: Int?
    public var latencyMs: Int
    public var error: String?

    public init(at: Timestamp, statusCode: Int?, latencyMs: Int, error: String?) {
        self.at = at
        self.statusCode = statusCode
        self.latencyMs = latencyMs
        self.error = error
    }

    // Pinned: the stored `attempts` column's keys.
    enum CodingKeys: String, CodingKey { case at, statusCode, latencyMs, error }
}

/// An outbox row: one event for one destination — a subscription, or a run's `callback_url`
/// (then `webhookID` is nil). Written in the same transaction as its event. It holds no
/// signing secret: that is read when the delivery is leased (`DeliveryLease`), so a secret
/// lives in one row — its subscription's, or its run's.
public struct Delivery: Sendable, Equatable {
    public var id: String
    public var webhookID: String?
    public var runID: String
    public var eventID: String
    public var eventSeq: Int64
    public var type: String
    public var url: String
    public var payload: Data
    public var status: DeliveryStatus
    public var attempts: [DeliveryAttempt]
    public var nextAttemptAt: Timestamp?
    public var createdAt: Timestamp

    public init(
        id: String, webhookID: String?, runID: String, eventID: String, eventSeq: Int64, type: String, url: String,
        payload: Data, status: DeliveryStatus, attempts: [DeliveryAttempt], nextAttemptAt: Timestamp?, createdAt: Timestamp
    ) {
        self.id = id
        self.webhookID = webhookID
        self.runID = runID
        self.eventID = eventID
        self.eventSeq = eventSeq
        self.type = type
        self.url = url
        self.payload = payload
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
    }
}

extension Delivery {
    /// Adds `attempt` and moves the delivery to where `verdict` sends it: done, due again at
    /// the retry time, or failed for good. Both stores write the result as they read it.
    public mutating func record(_ attempt: DeliveryAttempt, verdict: DeliveryVerdict) {
        attempts.append(attempt)
        switch verdict {
        case .succeeded:
            status = .succeeded
            nextAttemptAt = nil
        case .retry(let at):
            status = .pending
            nextAttemptAt = at
        case .failed, .failedAndDisable:
            status = .failed
            nextAttemptAt = nil
        }
    }
}

/// What follows an attempt.
public enum DeliveryVerdict: Sendable, Equatable {
    case succeeded
    case retry(at: Timestamp)
    case failed
    /// Failed, and the subscription is disabled (the receiver answered 410 Gone).
    case failedAndDisable(reason: String)
}

/// What an attempt needs beyond the outbox row, read as the delivery is leased.
public struct DeliveryLease: Sendable, Equatable {
    /// The subscription's secret, or the run's `callback_secret`; nil when neither exists.
    public var secret: String?

    public init(secret: String?) { self.secret = secret }
}

/// What asking for a delivery to be tried again did.
public enum DeliveryRetry: Sendable, Equatable {
    case requeued
    case unknown
    /// Its subscription was deleted or disabled: nothing more is sent for it.
    case inactive
}

/// Subscriptions and the delivery outbox.
public protocol WebhookStore: Sendable {
    func createWebhook(_ webhook: Webhook) async throws
    func webhook(id: String) async throws -> Webhook?
    /// Oldest first; `after` is the last id of the previous page.
    func webhooks(limit: Int, after: String?) async throws -> (items: [Webhook], nextCursor: String?)
    /// Deletes the subscription; its pending deliveries fail and are never attempted again
    /// (the rows stay, listed under the subscription's id). False when unknown.
    func deleteWebhook(id: String, now: Timestamp) async throws -> Bool

    func delivery(id: String) async throws -> Delivery?
    /// Newest first; `before` is the last id of the previous page.
    func deliveries(webhookID: String, limit: Int, before: String?) async throws -> (items: [Delivery], nextCursor: String?)
    /// For each URL with a due delivery, its oldest due one (by next attempt, then `seq`),
    /// oldest first — so a URL with thousands of due rows (a receiver that is down) takes one
    /// place in the answer and cannot keep healthy receivers' deliveries out of it.
    func dueDeliveries(now: Timestamp, limit: Int) async throws -> [Delivery]
    /// For one URL, the oldest due delivery of each of its runs, runs oldest first, at most
    /// `limit`: what may be attempted at once to that receiver, one per run.
    func dueDeliveries(url: String, now: Timestamp, limit: Int) async throws -> [Delivery]
    /// Takes a due delivery for one attempt by moving its next attempt to `until`, and reads
    /// its signing secret; nil when it is no longer pending and due (another dispatcher, or a
    /// stale read, got there first) or its subscription is gone or disabled (then it fails).
    /// A dispatcher that dies mid-attempt leaves the lease to run out: at-least-once.
    func leaseDelivery(id: String, now: Timestamp, until: Timestamp) async throws -> DeliveryLease?
    /// Appends an attempt and applies its verdict. After a success, other pending deliveries to
    /// the same URL are made due at once: the receiver is back.
    func recordAttempt(deliveryID: String, _ attempt: DeliveryAttempt, verdict: DeliveryVerdict) async throws
    /// Makes a delivery pending and due now, whatever its status — unless its subscription
    /// was deleted or disabled.
    func retryDelivery(id: String, now: Timestamp) async throws -> DeliveryRetry
    /// Makes every failed delivery of the subscription whose event was created at or after
    /// `since` pending and due now, if the subscription is active; returns how many.
    func recoverDeliveries(webhookID: String, since: Timestamp, now: Timestamp) async throws -> Int
}
