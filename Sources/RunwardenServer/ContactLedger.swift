import RunwardenCore
import Synchronization

/// The runner contacts this node wrote lately, so a claim need not write one again.
///
/// Every claim and heartbeat is the runner's contact (SPEC §8), and writing it was a
/// transaction of its own — a runner looping claim → running → succeeded made five write
/// transactions of every one-task run instead of four. `last_seen_at` only has to be fresh
/// enough for the reaper, which waits a whole lease: so a contact that says nothing new, within
/// a tenth of a lease of the one this node wrote, is not written (a runner killed right after
/// it is found lost at most that much later).
///
/// What else can change a runner's record — a drain or resume, a goodbye, going silent — moves
/// the hub's `runners` topic, on this node or (PostgreSQL's notifications) any other; a contact
/// noted before that is written again, so a drained runner is told at its next claim.
final class ContactLedger: Sendable {
    private struct Entry {
        var contact: RunnerContact
        var draining: Bool
        var recordedAt: Timestamp
        var generation: UInt64
    }

    /// Beyond this many runners, entries too old to vouch for anything are dropped first.
    private static let capacity = 10_000
    private let entries = Mutex<[String: Entry]>([:])

    /// Whether `contact` was written within `interval` with nothing in it changed since, and
    /// nothing else changed a runner's record meanwhile (`generation` of `runners`); then the
    /// runner's `draining` as written.
    func draining(ifRecorded contact: RunnerContact, within interval: Duration, now: Timestamp, generation: UInt64) -> Bool? {
        entries.withLock { entries in
            guard let entry = entries[contact.name], entry.generation == generation,
                entry.recordedAt <= now, Self.milliseconds(interval) > now.milliseconds - entry.recordedAt.milliseconds,
                Self.covers(entry.contact, contact)
            else { return nil }
            return entry.draining
        }
    }

    /// Notes a contact written at `now`, when the `runners` topic was at `generation`.
    func note(_ contact: RunnerContact, draining: Bool, now: Timestamp, generation: UInt64, interval: Duration) {
        entries.withLock { entries in
            var merged = entries[contact.name].map { $0.generation == generation ? $0.contact : contact } ?? contact
            merged.labels = contact.labels ?? merged.labels
            merged.version = contact.version ?? merged.version
            merged.hostname = contact.hostname ?? merged.hostname
            merged.concurrency = contact.concurrency ?? merged.concurrency
            if entries[contact.name] == nil, entries.count >= Self.capacity {
                let horizon = now.milliseconds &- Self.milliseconds(interval)
                entries = entries.filter { $0.value.recordedAt.milliseconds > horizon }
                if entries.count >= Self.capacity { entries.removeAll() }
            }
            entries[contact.name] = Entry(contact: merged, draining: draining, recordedAt: now, generation: generation)
        }
    }

    /// Whether writing `new` over what `recorded` wrote would change nothing but the time:
    /// every field `new` carries is the one recorded (an absent field keeps the stored one).
    private static func covers(_ recorded: RunnerContact, _ new: RunnerContact) -> Bool {
        (new.labels == nil || new.labels == recorded.labels) && (new.version == nil || new.version == recorded.version)
            && (new.hostname == nil || new.hostname == recorded.hostname)
            && (new.concurrency == nil || new.concurrency == recorded.concurrency)
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
