import RunwardenCore

/// The statements both backends use for concurrency keys (SPEC §10). A key's line is the runs
/// whose `concurrency_slot` is `waiting` or `holding` (NULL once released), found through one
/// partial index on (key, slot, age): what a change reads grows with the key's own unfinished
/// runs, never with all runs or all waiting runs. `?`/`$1` is the key.
public enum ConcurrencySQL {
    /// Only runs still in a key's line are in it.
    public static let index = """
        CREATE INDEX runs_by_concurrency ON runs (concurrency_key, concurrency_slot, created_at, id)
        WHERE concurrency_slot IS NOT NULL
        """

    /// The key's unfinished runs, oldest first: what a new run's `on_conflict` looks at.
    public static func members(_ key: String) -> String {
        """
        SELECT id, status, concurrency_slot FROM runs WHERE concurrency_key = \(key) AND concurrency_slot IS NOT NULL
        ORDER BY created_at, id
        """
    }

    /// The runs holding the key's slots, oldest first (a run's `held_by`).
    public static func holders(_ key: String) -> String {
        "SELECT id FROM runs WHERE concurrency_key = \(key) AND concurrency_slot = 'holding' ORDER BY created_at, id"
    }

    /// The run first in the key's line: the next to be admitted.
    public static func oldestWaiting(_ key: String) -> String {
        "SELECT id FROM runs WHERE concurrency_key = \(key) AND concurrency_slot = 'waiting' ORDER BY created_at, id LIMIT 1"
    }

    /// A member from the columns `members` selects.
    public static func member(id: String, status: String, slot: String) -> ConcurrencyMember? {
        guard let status = RunStatus(rawValue: status), let slot = ConcurrencySlot(rawValue: slot) else { return nil }
        return ConcurrencyMember(runID: id, status: status, slot: slot)
    }
}

extension ConcurrencyRules {
    /// The key whose line a committed change left (the run ended, so its slot or its place is
    /// given up): the store then admits whoever may take the slot, in the same transaction.
    public static func releasedKey(before: Run, after: Run) -> String? {
        guard let key = after.spec.concurrency?.key, after.state.concurrencySlot == .released,
            let previous = before.state.concurrencySlot, previous != .released
        else { return nil }
        return key
    }
}
