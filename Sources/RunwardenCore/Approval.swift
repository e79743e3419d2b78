/// What makes a task an approval task (SPEC §10): `"approval": {"timeout_s"?: N}`.
public struct ApprovalSpec: Sendable, Equatable, Codable {
    /// How long it may wait for a decision once `queued`; then it ends `timed_out`. Nil: forever.
    public var timeoutSeconds: Int?

    public init(timeoutSeconds: Int? = nil) { self.timeoutSeconds = timeoutSeconds }

    // Pinned: inside the stored `spec` column.
    enum CodingKeys: String, CodingKey { case timeoutSeconds }
}

/// A person's decision on an approval task, kept in the task and in the event it causes.
public struct ApprovalDecision: Sendable, Equatable, Codable {
    public var approved: Bool
    /// Who decided: a per-runner token's id (`rtk_…`), else the kind of token the request
    /// presented (`client`, or `open` without tokens).
    public var by: String
    public var comment: String?
    public var at: Timestamp

    public init(approved: Bool, by: String, comment: String?, at: Timestamp) {
        self.approved = approved
        self.by = by
        self.comment = comment
        self.at = at
    }

    // Pinned: the stored `state` column's and the `events.approval` column's keys.
    enum CodingKeys: String, CodingKey { case approved, by, comment, at }

    /// The longest comment kept.
    public static let maxCommentLength = 4096

    /// Reads `{"comment"?: "..."}` of an approve or reject; no body is no comment.
    public static func parseComment(_ body: JSONValue?) -> Result<String?, ValidationFailure> {
        guard let body else { return .success(nil) }
        var reader = FieldReader()
        guard reader.object(body, at: "", allowed: ["comment"]) != nil, reader.errors.isEmpty else {
            return .failure(ValidationFailure(reader.errors))
        }
        let comment = reader.string(body, "comment", at: "", maxLength: maxCommentLength)
        return reader.errors.isEmpty ? .success(comment) : .failure(ValidationFailure(reader.errors))
    }
}

extension Run {
    /// A `task.queued` event for every approval task that is queued from the start (no needs):
    /// subscribers learn that it waits for a person, as they do when needs release one later.
    public func approvalRequests(eventID: () -> String) -> [EventDraft] {
        tasks.filter { $0.spec.approval != nil && $0.status == .queued }.map { task in
            EventDraft(
                id: eventID(), runID: id, taskID: task.id, type: EventType.task(.queued), status: TaskStatus.queued.rawValue,
                previousStatus: TaskStatus.pending.rawValue, timestamp: state.createdAt, attempt: task.state.attempt, error: nil)
        }
    }
}
