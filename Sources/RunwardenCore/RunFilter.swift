/// Which runs a bulk cancel or a run-list filter names (SPEC §10): statuses, a workflow,
/// exact top-level metadata strings, and a creation window.
public struct RunFilter: Sendable, Equatable {
    public var statuses: [RunStatus]?
    public var workflow: String?
    public var metadata: [String: String] = [:]
    public var createdAfter: Timestamp?
    public var createdBefore: Timestamp?

    public init(
        statuses: [RunStatus]? = nil, workflow: String? = nil, metadata: [String: String] = [:], createdAfter: Timestamp? = nil,
        createdBefore: Timestamp? = nil
    ) {
        self.statuses = statuses
        self.workflow = workflow
        self.metadata = metadata
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
    }

    /// The most metadata members one filter may name.
    public static let maxMetadataFilters = 20

    /// Reads a bulk cancel body: `{"status"?: [...], "workflow"?, "metadata"?: {...}, "created_before"?}`.
    /// At least one filter is required: a body that names none would cancel everything.
    public static func parseBulkCancel(_ body: JSONValue) -> Result<RunFilter, ValidationFailure> {
        var reader = FieldReader()
        guard reader.object(body, at: "", allowed: ["status", "workflow", "metadata", "created_before"]) != nil else {
            return .failure(ValidationFailure(reader.errors))
        }
        var filter = RunFilter()
        if let names = reader.stringList(body, "status", at: "") {
            if names.isEmpty { reader.fail("status", "must list at least one status") }
            var statuses: [RunStatus] = []
            for (index, name) in names.enumerated() {
                if let status = RunStatus(rawValue: name) { statuses.append(status) } else { reader.fail("status[\(index)]", Self.statusRule(name)) }
            }
            filter.statuses = statuses
        }
        filter.workflow = reader.string(body, "workflow", at: "", maxLength: 200)
        if let metadata = reader.stringMap(body, "metadata", at: "") {
            if metadata.isEmpty { reader.fail("metadata", "must name at least one member") }
            if metadata.count > maxMetadataFilters { reader.fail("metadata", "must name at most \(maxMetadataFilters) members") }
            filter.metadata = metadata
        }
        if let text = reader.string(body, "created_before", at: "", maxLength: 64) {
            filter.createdBefore = Timestamp(iso8601: text)
            if filter.createdBefore == nil { reader.fail("created_before", Self.timestampRule(text)) }
        }
        if reader.errors.isEmpty, filter == RunFilter() {
            reader.fail("body", "must name at least one filter (status, workflow, metadata, created_before): a bulk cancel of every run is refused")
        }
        return reader.errors.isEmpty ? .success(filter) : .failure(ValidationFailure(reader.errors))
    }

    public static func statusRule(_ text: String) -> String {
        "must be one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\""
    }

    public static func timestampRule(_ text: String) -> String {
        "must be an ISO 8601 timestamp such as 2026-01-01T00:00:00Z, not \"\(text)\""
    }
}

/// `POST /v1/runs/cancel`'s answer.
public struct BulkCancelAnswer: Codable, Sendable, Equatable {
    public var canceled: Int
    public init(canceled: Int) { self.canceled = canceled }
    public enum CodingKeys: String, CodingKey, CaseIterable { case canceled }
}
