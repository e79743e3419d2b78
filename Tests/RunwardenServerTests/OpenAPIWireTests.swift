import Foundation
import RunwardenTestSupport
import RunwardenCore
import Testing

/// The OpenAPI document and the wire types of `RunwardenCore/Wire` describe the same JSON: a
/// field added to one and not the other fails here (schemathesis then checks the live server
/// against the document, from OpenAPIContractTests).
@Suite("OpenAPI document against the wire types")
struct OpenAPIWireTests {
    /// A wire type's keys, and which of them it leaves out when nil.
    struct Shape {
        let name: String
        let keys: [String]
        let omittedWhenNil: Set<String>

        init<Key: CodingKey & CaseIterable>(_ name: String, _ key: Key.Type) {
            self.name = name
            keys = Key.allCases.map(\.stringValue)
            omittedWhenNil = (Key.self as? any OmittedWhenNil.Type)?.omittedWhenNil ?? []
        }
    }

    /// Each response schema of the document (and the one request body a Swift type writes), and
    /// the wire type that renders it.
    static let responses: [(schema: String, shape: Shape)] = [
        ("CreatedRun", Shape("RunSnapshot", RunSnapshot.CodingKeys.self)),
        ("RunProgress", Shape("RunProgress", RunProgress.CodingKeys.self)),
        ("RunLinks", Shape("RunLinks", RunLinks.CodingKeys.self)),
        ("RunList", Shape("RunList", RunList.CodingKeys.self)),
        ("TaskWithRun", Shape("TaskSnapshot", TaskSnapshot.CodingKeys.self)),
        ("TaskProgress", Shape("TaskProgress", TaskProgress.CodingKeys.self)),
        ("TaskError", Shape("TaskError", TaskError.CodingKeys.self)),
        ("RunError", Shape("RunError", RunError.CodingKeys.self)),
        ("BlockedBy", Shape("BlockedBy", BlockedBy.CodingKeys.self)),
        ("Approval", Shape("ApprovalWire", ApprovalWire.CodingKeys.self)),
        ("RunBlockedBy", Shape("RunBlockedBy", RunBlockedBy.CodingKeys.self)),
        ("Concurrency", Shape("ConcurrencyWire", ConcurrencyWire.CodingKeys.self)),
        ("Event", Shape("RunEvent", RunEvent.CodingKeys.self)),
        ("EventPage", Shape("EventPage", EventPage.CodingKeys.self)),
        ("ClaimedTask", Shape("ClaimedTask", ClaimedTask.CodingKeys.self)),
        ("Claim", Shape("ClaimAnswer", ClaimAnswer.CodingKeys.self)),
        ("HeartbeatResponse", Shape("HeartbeatAnswer", HeartbeatAnswer.CodingKeys.self)),
        ("Runner", Shape("RunnerItem", RunnerItem.CodingKeys.self)),
        ("RunnerList", Shape("Page", Page<RunnerItem>.CodingKeys.self)),
        ("RunnerWebhookPayload", Shape("RunnerWebhookPayload", RunnerWebhookPayload.CodingKeys.self)),
        ("RunnerToken", Shape("RunnerTokenItem", RunnerTokenItem.CodingKeys.self)),
        ("RunnerTokenList", Shape("Page", Page<RunnerTokenItem>.CodingKeys.self)),
        ("StatusReportResult", Shape("ReportAnswer", ReportAnswer.CodingKeys.self)),
        ("LogAppendAnswer", Shape("LogAppendAnswer", LogAppendAnswer.CodingKeys.self)),
        ("LogStreamChunk", Shape("LogStreamChunk", LogStreamChunk.CodingKeys.self)),
        ("WebhookPayload", Shape("WebhookPayload", WebhookPayload.CodingKeys.self)),
        ("CreatedWebhook", Shape("WebhookItem", WebhookItem.CodingKeys.self)),
        ("WebhookList", Shape("Page", Page<WebhookItem>.CodingKeys.self)),
        ("Delivery", Shape("DeliveryItem", DeliveryItem.CodingKeys.self)),
        ("DeliveryAttempt", Shape("DeliveryAttemptItem", DeliveryAttemptItem.CodingKeys.self)),
        ("DeliveryList", Shape("Page", Page<DeliveryItem>.CodingKeys.self)),
        ("RecoverResult", Shape("RecoverResult", RecoverResult.CodingKeys.self)),
        ("BulkCancelAnswer", Shape("BulkCancelAnswer", BulkCancelAnswer.CodingKeys.self)),
        ("Lock", Shape("LockItem", LockItem.CodingKeys.self)),
        ("LockList", Shape("Page", Page<LockItem>.CodingKeys.self)),
        ("TaskList", Shape("Page", Page<TaskSnapshot>.CodingKeys.self)),
        ("Health", Shape("Health", Health.CodingKeys.self)),
        ("ErrorEnvelope", Shape("ErrorEnvelope", ErrorEnvelope.CodingKeys.self)),
        ("FieldError", Shape("FieldError", FieldError.CodingKeys.self)),
        ("StatusReport", Shape("StatusReport", StatusReport.CodingKeys.self)),  // the runner encodes it
    ]

    /// Request bodies are read field by field (`FieldReader`, with its own checks), and an SSE
    /// frame is not JSON: these schemas have no wire type.
    static let notWireTypes: Set<String> = [
        "CreateRun", "CreateTask", "ClaimRequest", "HeartbeatRequest", "CreateWebhook", "RecoverRequest", "CreateRunnerToken",
        "RerunRequest", "ApprovalRequest", "BulkCancel",
        "ServerSentEvent", "LogServerSentEvent",
    ]

    static let schemas: [String: JSONValue] = {
        let url = packageRoot.appendingPathComponent("Sources/RunwardenServer/Resources/openapi.json")
        let document = (try? Data(contentsOf: url)).flatMap { try? JSONValue.parse($0) }
        let members = document?["components"]?["schemas"]?.objectMembers ?? []
        return Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
    }()

    static func strings(_ value: JSONValue?) -> [String] {
        guard case .array(let items)? = value else { return [] }
        return items.compactMap { if case .string(let text) = $0 { text } else { nil } }
    }

    /// A schema's properties and required names, following `$ref`, `allOf` and `oneOf`.
    static func flattened(_ schema: JSONValue?) -> (properties: Set<String>, required: Set<String>) {
        guard var object = schema else { return ([], []) }
        if case .string(let ref)? = object["$ref"] { object = schemas[String(ref.split(separator: "/").last ?? "")] ?? .null }
        var properties = Set(object["properties"]?.objectMembers?.map(\.key) ?? [])
        var required = Set(strings(object["required"]))
        if case .array(let parts)? = object["allOf"] {
            for part in parts {
                let (more, moreRequired) = flattened(part)
                properties.formUnion(more)
                required.formUnion(moreRequired)
            }
        }
        if case .array(let parts)? = object["oneOf"] {
            for part in parts { properties.formUnion(flattened(part).properties) }  // each alternative requires its own
        }
        return (properties, required)
    }

    @Test("every response schema has exactly the fields of its wire type", arguments: responses.map(\.schema))
    func schemaMatchesItsWireType(schema name: String) throws {
        let shape = try #require(Self.responses.first { $0.schema == name }?.shape)
        let schema = try #require(Self.schemas[name], "openapi.json has no schema \(name)")
        let (properties, required) = Self.flattened(schema)
        let keys = Set(shape.keys)
        #expect(keys.subtracting(properties).isEmpty, "\(shape.name) has \(keys.subtracting(properties).sorted()) that \(name) lacks")
        #expect(properties.subtracting(keys).isEmpty, "\(name) has \(properties.subtracting(keys).sorted()) that \(shape.name) lacks")
        if name != "BlockedBy" {  // two shapes in one: each alternative requires its own fields
            let alwaysWritten = keys.subtracting(shape.omittedWhenNil)
            #expect(alwaysWritten.subtracting(required).isEmpty, "\(name) must require \(alwaysWritten.subtracting(required).sorted()): \(shape.name) always writes them")
        }
    }

    @Test func everyObjectSchemaIsAWireTypeOrARequestBody() {
        let covered = Set(Self.responses.map(\.schema)).union(Self.notWireTypes)
        let objects = Self.schemas.filter { _, schema in !Self.flattened(schema).properties.isEmpty }.map(\.key)
        let uncovered = Set(objects).subtracting(covered).subtracting(["Run", "RunSummary", "Task", "Webhook"])
        #expect(uncovered.isEmpty, "schemas with no wire type: \(uncovered.sorted())")
        // Run, RunSummary, Task and Webhook are the parts CreatedRun, TaskWithRun and CreatedWebhook build on:
        let runSummary = Self.flattened(Self.schemas["RunSummary"]).properties
        let snapshot = Set(RunSnapshot.CodingKeys.allCases.map(\.stringValue)).subtracting(["tasks", "callback_secret"])
        #expect(runSummary == snapshot, "a run-list item is the snapshot without tasks")
    }

    @Test func statusAndErrorCodeEnumsMatch() {
        func values(_ name: String) -> Set<String> { Set(Self.strings(Self.schemas[name]?["enum"])) }
        #expect(values("RunStatus") == Set(RunStatus.allCases.map(\.rawValue)))
        #expect(values("TaskStatus") == Set(TaskStatus.allCases.map(\.rawValue)))
        #expect(values("RunnerStatus") == Set(RunnerStatus.allCases.map(\.rawValue)))
        let eventTypes = RunStatus.allCases.map(EventType.run) + TaskStatus.allCases.map(EventType.task)
            + RunnerStatus.allCases.map(EventType.runner) + [EventType.runCreated, EventType.taskRetrying]
        #expect(values("EventType") == Set(eventTypes))
        let documented = Set(Self.strings(Self.schemas["ErrorEnvelope"]?["properties"]?["error"]?["properties"]?["code"]?["enum"]))
        #expect(documented == Set(ErrorCode.allCases.filter { $0 != .unrecognized }.map(\.rawValue)))
    }
}
