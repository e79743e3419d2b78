/// A runner's status report (SPEC §2 "Runner protocol"), validated. The runner encodes this
/// same type as the request body; the server reads it back with `parse`, field by field.
public struct StatusReport: Sendable, Equatable, Encodable {
    public var status: TaskStatus
    public var attempt: Int?
    public var exitCode: Int?
    public var error: TaskError?
    public var outputRef: String?
    public var progress: TaskProgress?
    public var timestamp: Timestamp?

    public init(
        status: TaskStatus, attempt: Int? = nil, exitCode: Int? = nil, error: TaskError? = nil,
        outputRef: String? = nil, progress: TaskProgress? = nil, timestamp: Timestamp? = nil
    ) {
        self.status = status
        self.attempt = attempt
        self.exitCode = exitCode
        self.error = error
        self.outputRef = outputRef
        self.progress = progress
        self.timestamp = timestamp
    }

    public enum CodingKeys: String, CodingKey, CaseIterable, OmittedWhenNil {
        case status, attempt
        case exitCode = "exit_code"
        case error
        case outputRef = "output_ref"
        case progress, timestamp

        public static let omittedWhenNil: Set<String> = ["attempt", "exit_code", "error", "output_ref", "progress", "timestamp"]
    }

    static let fields = Set(CodingKeys.allCases.map(\.stringValue))

    /// As the wire has it: the timestamp as ISO 8601 text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        try container.encodeIfPresent(attempt, forKey: .attempt)
        try container.encodeIfPresent(exitCode, forKey: .exitCode)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encodeIfPresent(outputRef, forKey: .outputRef)
        try container.encodeIfPresent(progress, forKey: .progress)
        try container.encodeIfPresent(timestamp?.iso8601, forKey: .timestamp)
    }

    public static func parse(_ body: JSONValue) -> Result<StatusReport, ValidationFailure> {
        var reader = FieldReader()
        guard let object = reader.object(body, at: "", allowed: fields) else { return .failure(ValidationFailure(reader.errors)) }
        let statusText = reader.string(object, "status", at: "", required: true, maxLength: 32)
        let status = statusText.flatMap(TaskStatus.init(rawValue:))
        if let statusText, status.map(TaskStatus.reportable.contains) != true {
            let allowed = TaskStatus.reportable.map(\.rawValue).joined(separator: ", ")
            reader.fail("status", "\"\(statusText)\" cannot be reported; use one of \(allowed)")
        }
        let attempt = reader.integer(object, "attempt", at: "", minimum: 1)
        let exitCode = reader.integer(object, "exit_code", at: "", minimum: Int(Int32.min))
        let outputRef = reader.string(object, "output_ref", at: "", maxLength: 2048)

        var error: TaskError?
        if let value = reader.present(object, "error", "error", false),
            let errorObject = reader.object(value, at: "error", allowed: ["code", "message", "retryable"])
        {
            let code = reader.string(errorObject, "code", at: "error", required: true, maxLength: 64)
            let message = reader.string(errorObject, "message", at: "error", maxLength: 16_384) ?? ""
            let retryable = reader.bool(errorObject, "retryable", at: "error")
            if let code { error = TaskError(code: code, message: message, retryable: retryable) }
        }

        var progress: TaskProgress?
        if let value = reader.present(object, "progress", "progress", false),
            let progressObject = reader.object(value, at: "progress", allowed: ["done", "total"])
        {
            let done = reader.integer(progressObject, "done", at: "progress", minimum: 0)
            let total = reader.integer(progressObject, "total", at: "progress", minimum: 0)
            if let done, let total { progress = TaskProgress(done: done, total: total) }
            if done == nil || total == nil, (progressObject["done"] ?? .null) == .null || (progressObject["total"] ?? .null) == .null {
                reader.fail("progress", "needs both done and total")
            }
        }

        var timestamp: Timestamp?
        if let text = reader.string(object, "timestamp", at: "", maxLength: 64) {
            timestamp = Timestamp(iso8601: text)
            if timestamp == nil { reader.fail("timestamp", "must be an ISO 8601 timestamp such as 2026-01-01T00:00:00.000Z") }
        }

        guard reader.errors.isEmpty, let status else { return .failure(ValidationFailure(reader.errors)) }
        return .success(
            StatusReport(
                status: status, attempt: attempt, exitCode: exitCode, error: error, outputRef: outputRef,
                progress: progress, timestamp: timestamp))
    }
}
