/// How many of a run's tasks are in each status. The run keeps these in its state as each
/// change commits, so rolling a run up (SPEC §1) and showing its `progress` never counts rows.
public struct TaskCounts: Sendable, Equatable, Codable {
    public private(set) var byStatus: [TaskStatus: Int]

    public init(_ tasks: some Sequence<RunTask> = [RunTask]()) {
        var counts = [TaskStatus: Int]()
        for task in tasks { counts[task.status, default: 0] += 1 }
        byStatus = counts
    }

    public init(_ counts: [TaskStatus: Int]) { byStatus = counts.filter { $0.value != 0 } }

    public subscript(status: TaskStatus) -> Int { byStatus[status] ?? 0 }

    public var total: Int { byStatus.values.reduce(0, +) }
    public var finished: Int { byStatus.filter { $0.key.isTerminal }.values.reduce(0, +) }
    public var active: Int { byStatus.filter { $0.key.isActive }.values.reduce(0, +) }

    /// One task moved from `old` to `new`.
    public mutating func move(from old: TaskStatus, to new: TaskStatus) {
        guard old != new else { return }
        // No zero entries: equal counts are equal values.
        byStatus[old] = self[old] > 1 ? self[old] - 1 : nil
        byStatus[new] = self[new] + 1
    }

    // Stored as `{"queued": 3, "succeeded": 2}` in the run's `state` column.
    public init(from decoder: any Decoder) throws {
        let stored = try [String: Int](from: decoder)
        var counts = [TaskStatus: Int]()
        for (name, count) in stored {
            guard let status = TaskStatus(rawValue: name) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown task status \(name)"))
            }
            if count != 0 { counts[status] = count }
        }
        byStatus = counts
    }

    public func encode(to encoder: any Encoder) throws {
        var stored = [String: Int]()
        for (status, count) in byStatus where count != 0 { stored[status.rawValue] = count }
        try stored.encode(to: encoder)
    }
}

extension Run {
    /// Whether `tasks` holds every task of the run, as its counts say: a change loaded for a
    /// narrower scope — a report in a one-task run — has the whole run already, and need not
    /// load it again when it ends the run. (A run stored before counts were kept has none: it is.)
    public var holdsEveryTask: Bool { tasks.count == state.taskCounts?.total }
}
