import Foundation
import RunwardenCore

/// How both backends find claimable work without reading the backlog no runner can take.
///
/// Each task row carries `labels_key`, its label set written one canonical way. A claim first
/// lists the distinct label sets of queued tasks — a loose index scan over
/// `tasks_queued_by_labels`, one seek per set, not one row per task — keeps the sets the runner
/// has every label of, and then reads only those sets' oldest tasks in index order. So 50,000
/// queued tasks for labels nobody has cost a claim one seek, not 50,000 rows.
public enum ClaimSQL {
    /// The canonical text of a label set: a JSON array of the distinct labels, sorted.
    public static func labelsKey(_ labels: [String]) -> String {
        String(decoding: JSONValueEncoder.data(Array(Set(labels)).sorted()), as: UTF8.self)
    }

    /// The `labels_key` a task row is stored with. An approval task (SPEC §10) is never claimed:
    /// its key is one no runner can take (it does not parse as a label set), so it costs a
    /// claim's loose index scan one more seek, never a row per waiting approval.
    public static func labelsKey(for spec: TaskSpec) -> String {
        spec.approval == nil ? labelsKey(spec.labels) : approvalKey
    }

    static let approvalKey = "approval"

    /// Whether a runner with `labels` can take a task whose label set is `key` (text the
    /// migration or `labelsKey` wrote; a key that does not parse is nobody's).
    public static func runner(_ labels: Set<String>, canTake key: String) -> Bool {
        guard let taskLabels = try? JSONColumn.decode([String].self, key) else { return false }
        return taskLabels.allSatisfy(labels.contains)
    }

    /// The distinct `labels_key`s of queued tasks, each found with one index seek.
    public static let queuedLabelSets = """
        WITH RECURSIVE label_sets(k) AS (
            SELECT (SELECT labels_key FROM tasks WHERE status = 'queued' ORDER BY labels_key LIMIT 1)
            UNION ALL
            SELECT (SELECT t.labels_key FROM tasks t WHERE t.status = 'queued' AND t.labels_key > label_sets.k
                    ORDER BY t.labels_key LIMIT 1)
            FROM label_sets WHERE label_sets.k IS NOT NULL
        )
        SELECT k FROM label_sets WHERE k IS NOT NULL
        """

    /// The index the scan above and the per-set head lookups use (SQLite v17, PostgreSQL 16 on):
    /// within a label set, the highest priority first, then the oldest (SPEC §10). Priority sits
    /// after the label set, so the loose scan still costs one seek per set and a set's head is
    /// still its first index entry: priorities add nothing a backlog could make grow.
    public static let queuedByPriorityIndex =
        "CREATE INDEX tasks_queued_by_priority ON tasks (labels_key, priority DESC, queued_at, run_id, position) WHERE status = 'queued'"

    /// The order of claimable tasks, as the index above keeps it (`t` is the tasks table).
    public static let claimOrder = "t.priority DESC, t.queued_at, t.run_id, t.position"

    /// The index before priorities (shipped migrations create it; the priority migration drops it).
    public static let queuedByLabelsIndex =
        "CREATE INDEX tasks_queued_by_labels ON tasks (labels_key, queued_at, run_id, position) WHERE status = 'queued'"
}
