/// What happens to older runs of a concurrency key when a new run of it arrives (SPEC §10).
public enum ConcurrencyConflict: String, Sendable, Equatable, Codable, CaseIterable {
    /// The new run waits its turn behind the older ones.
    case queue
    /// Older runs of the key that have not started are canceled.
    case cancelPending = "cancel_pending"
    /// Every older unfinished run of the key is canceled.
    case cancelRunning = "cancel_running"
}

/// `"concurrency": {"key": "deploy-prod", "limit": 1, "on_conflict": "queue"}` of a run (SPEC §10):
/// at most `limit` unfinished runs of `key` hold a slot; a run past it waits `queued` with none of
/// its tasks claimable until a holder ends.
public struct ConcurrencySpec: Sendable, Equatable, Codable {
    public var key: String
    public var limit: Int
    public var onConflict: ConcurrencyConflict

    public init(key: String, limit: Int = 1, onConflict: ConcurrencyConflict = .queue) {
        self.key = key
        self.limit = limit
        self.onConflict = onConflict
    }

    /// Bounds what a change of a key may read: counting a key's holders reads at most this many rows.
    public static let maxLimit = 1000
    public static let maxKeyLength = 200

    // Pinned: inside the stored `spec` column.
    enum CodingKeys: String, CodingKey { case key, limit, onConflict }

    /// Reads the `concurrency` member of a create body; every broken rule is recorded in `reader`.
    static func parse(_ value: JSONValue?, reader: inout FieldReader) -> ConcurrencySpec? {
        guard let value, value != .null,
            let object = reader.object(value, at: "concurrency", allowed: ["key", "limit", "on_conflict"])
        else { return nil }
        let before = reader.errors.count
        let key = reader.string(object, "key", at: "concurrency", required: true, maxLength: maxKeyLength)
        if let key, key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            reader.fail("concurrency.key", "must not contain control characters")
        }
        let limit = reader.integer(object, "limit", at: "concurrency", minimum: 1, maximum: maxLimit) ?? 1
        var onConflict = ConcurrencyConflict.queue
        switch object["on_conflict"] {
        case nil, .null: break
        case .string(let text) where ConcurrencyConflict(rawValue: text) != nil: onConflict = ConcurrencyConflict(rawValue: text)!
        case .some:
            let names = ConcurrencyConflict.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            reader.fail("concurrency.on_conflict", "must be one of \(names)")
        }
        guard reader.errors.count == before, let key else { return nil }
        return ConcurrencySpec(key: key, limit: limit, onConflict: onConflict)
    }
}

/// Where a run of a concurrency key stands. Kept in the run's state and, for the index the
/// stores admit by, in its `concurrency_slot` column (NULL once released).
public enum ConcurrencySlot: String, Sendable, Equatable, Codable {
    /// Past the limit: the run is `queued` and none of its tasks is claimable.
    case waiting
    /// Admitted: one of the key's `limit` slots is this run's until it ends.
    case holding
    /// The run ended: its slot (or its place in the line) is given up.
    case released

    /// The `concurrency_slot` column: only runs still in the key's line are indexed.
    public var column: String? { self == .released ? nil : rawValue }
}

/// A run of a key as the store reads it from the key's index when a new run of the key arrives.
public struct ConcurrencyMember: Sendable, Equatable {
    public var runID: String
    public var status: RunStatus
    public var slot: ConcurrencySlot
    public init(runID: String, status: RunStatus, slot: ConcurrencySlot) {
        self.runID = runID
        self.status = status
        self.slot = slot
    }
}

/// The rules of concurrency keys (SPEC §10), the same for every store: which older runs a new
/// run cancels, and whether a run may take a slot.
public enum ConcurrencyRules {
    /// The older runs `onConflict` cancels, waiting ones first (they hold no slot, so canceling
    /// them admits nobody), then holders, oldest first. `cancel_pending` takes the runs that
    /// have not started (`queued`); `cancel_running` every unfinished one.
    public static func victims(of onConflict: ConcurrencyConflict, among members: [ConcurrencyMember]) -> [String] {
        let targets: [ConcurrencyMember]
        switch onConflict {
        case .queue: return []
        case .cancelPending: targets = members.filter { $0.status == .queued }
        case .cancelRunning: targets = members.filter { !$0.status.isTerminal && $0.status != .canceling }
        }
        return targets.filter { $0.slot == .waiting }.map(\.runID) + targets.filter { $0.slot == .holding }.map(\.runID)
    }

    /// A run takes a slot when fewer than its limit hold one and nobody waits ahead of it.
    public static func admits(holders: Int, waitingAhead: Int, limit: Int) -> Bool {
        waitingAhead == 0 && holders < limit
    }
}

extension Run {
    /// A new run of a key takes its place in the key's line: a slot when fewer than its limit
    /// are held and nobody waits ahead of it, else the end of the line — and then the drafts of
    /// its tasks' events (approval tasks' `task.queued`) are dropped: those tasks wait too.
    public mutating func enterLine(holders: Int, someoneWaits: Bool, drafts: inout [EventDraft]) {
        guard let concurrency = spec.concurrency else { return }
        if ConcurrencyRules.admits(holders: holders, waitingAhead: someoneWaits ? 1 : 0, limit: concurrency.limit) {
            state.concurrencySlot = .holding
        } else {
            waitForConcurrencySlot()
            drafts.removeAll { $0.taskID != nil }
        }
    }

    /// A new run that must wait for a slot of its concurrency key: its tasks that would be
    /// `queued` stay `pending` (with no needs left) until `RunChange.admit`, so no runner can
    /// claim them and no approval asks a person yet.
    public mutating func waitForConcurrencySlot() {
        state.concurrencySlot = .waiting
        for index in tasks.indices where tasks[index].status == .queued {
            tasks[index].state.status = .pending
            tasks[index].state.queuedAt = nil
            tasks[index].state.needsLeft = 0
            state.taskCounts?.move(from: .queued, to: .pending)
        }
    }

    /// The run-level `blocked_by` of a run waiting for a slot; nil for any other run.
    public func concurrencyBlock(heldBy holders: [String]) -> RunBlockedBy? {
        guard state.concurrencySlot == .waiting, let key = spec.concurrency?.key else { return nil }
        return RunBlockedBy(concurrency: key, heldBy: holders)
    }
}
