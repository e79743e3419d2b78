import Foundation

/// A validated create body (SPEC §2 "Create body").
public struct RunDefinition: Sendable, Equatable {
    public var run: RunSpec
    public var tasks: [TaskSpec]

    /// The most tasks a run may hold unless the server says otherwise (`--max-tasks`, SPEC §7).
    public static let defaultMaxTasks = 10_000
    public static let maxMetadataDepth = 32
    /// A year: longer than any real run, short enough that deadlines never overflow.
    public static let maxTimeoutSeconds = 31_536_000
    static let runFields: Set<String> = ["workflow", "tasks", "timeout_s", "callback_url", "callback_secret", "metadata", "priority", "concurrency"]
    /// Claims take the highest priority first (SPEC §10).
    public static let priorityRange = -100...100
    static let taskFields: Set<String> = [
        "name", "command", "needs", "workspace", "timeout_s", "retries", "allow_failure", "labels", "env", "secret_env",
        "approval", "priority",
    ]
    /// A shorter secret would mask ordinary text in every log.
    public static let minimumSecretLength = 4

    public init(run: RunSpec, tasks: [TaskSpec]) {
        self.run = run
        self.tasks = tasks
    }

    /// Validates a parsed body. Every broken rule is returned, each with its JSON path.
    /// `egress` is the server's webhook egress policy: a `callback_url` naming a denied address is
    /// refused; `maxTasks` the most tasks a run may hold.
    public static func parse(
        _ body: JSONValue, egress: EgressPolicy = .standard, maxTasks: Int = defaultMaxTasks
    ) -> Result<RunDefinition, ValidationFailure> {
        var reader = FieldReader()
        guard let object = reader.object(body, at: "", allowed: runFields) else { return .failure(ValidationFailure(reader.errors)) }

        let workflow = reader.string(object, "workflow", at: "", required: true, maxLength: 200)
        let timeout = reader.integer(object, "timeout_s", at: "", minimum: 1, maximum: maxTimeoutSeconds)
        let priority = reader.integer(object, "priority", at: "", minimum: priorityRange.lowerBound, maximum: priorityRange.upperBound)
        let callbackURL = reader.string(object, "callback_url", at: "", maxLength: 2048)
        if let callbackURL, URLRules.httpURL(callbackURL) == nil {
            reader.fail("callback_url", "must be an absolute http:// or https:// URL")
        } else if let callbackURL, let problem = egress.problem(withURL: callbackURL) {
            reader.fail("callback_url", problem)
        }
        let callbackSecret = reader.string(object, "callback_secret", at: "", maxLength: 256)
        if let callbackSecret, let problem = WebhookSecret.problem(with: callbackSecret) { reader.fail("callback_secret", problem) }
        let metadata = reader.present(object, "metadata", "metadata", false)
        if let metadata, metadata.objectMembers == nil {
            reader.fail("metadata", "must be an object, not \(metadata.typeName)")
        } else if let metadata, metadata.nestingDepth > maxMetadataDepth {
            // The parser allows 512 levels; the stored run wraps metadata in more, and nobody
            // labels a run with more than a few.
            reader.fail("metadata", "must nest at most \(maxMetadataDepth) levels of objects and arrays")
        }

        let concurrency = ConcurrencySpec.parse(object["concurrency"], reader: &reader)

        var tasks: [TaskSpec] = []
        switch reader.present(object, "tasks", "tasks", true) {
        case .array(let items) where items.isEmpty:
            reader.fail("tasks", "must list at least one task")
        case .array(let items) where items.count > maxTasks:
            reader.fail("tasks", "must list at most \(maxTasks) tasks")
        case .array(let items):
            for (index, item) in items.enumerated() {
                if let task = parseTask(item, at: "tasks[\(index)]", reader: &reader) { tasks.append(task) }
            }
            if tasks.count == items.count {
                for error in NeedsGraph.validate(tasks) { reader.fail(error.field, error.message) }
            }
        case .some(let other):
            reader.fail("tasks", "must be an array, not \(other.typeName)")
        case .none:
            break
        }

        guard reader.errors.isEmpty, let workflow else { return .failure(ValidationFailure(reader.errors)) }
        let spec = RunSpec(
            workflow: workflow, timeoutSeconds: timeout, callbackURL: callbackURL, callbackSecret: callbackSecret,
            metadata: metadata, priority: priority, concurrency: concurrency)
        // A task without its own priority takes its run's.
        for index in tasks.indices where tasks[index].priority == nil { tasks[index].priority = priority ?? 0 }
        return .success(RunDefinition(run: spec, tasks: tasks))
    }

    private static func parseTask(_ value: JSONValue, at path: String, reader: inout FieldReader) -> TaskSpec? {
        let before = reader.errors.count
        guard let object = reader.object(value, at: path, allowed: taskFields) else { return nil }
        let name = reader.string(object, "name", at: path, required: true, maxLength: 200)
        let approval = parseApproval(object["approval"], at: reader.join(path, "approval"), reader: &reader)
        let command: TaskCommand?
        if object["approval"] != nil, object["approval"] != .null {
            // An approval task runs nothing: a command beside it is a mistake, not ignored.
            if reader.present(object, "command", reader.join(path, "command"), false) != nil {
                reader.fail(reader.join(path, "command"), "must not be given for an approval task: it runs nothing")
            }
            command = .argv([])
        } else {
            command = parseCommand(object["command"], at: reader.join(path, "command"), reader: &reader)
        }
        let needs = reader.stringList(object, "needs", at: path) ?? []
        let workspace = reader.string(object, "workspace", at: path, maxLength: 200)
        if let workspace, !WorkspaceName.isValid(workspace) { reader.fail(reader.join(path, "workspace"), WorkspaceName.rule) }
        let timeout = reader.integer(object, "timeout_s", at: path, minimum: 1, maximum: maxTimeoutSeconds)
        let retries = reader.integer(object, "retries", at: path, minimum: 0) ?? 0
        let allowFailure = reader.bool(object, "allow_failure", at: path) ?? false
        let labels = reader.stringList(object, "labels", at: path) ?? []
        let env = reader.stringMap(object, "env", at: path) ?? [:]
        let secretEnv = reader.stringMap(object, "secret_env", at: path)
        for (key, value) in secretEnv ?? [:] where value.utf8.count < minimumSecretLength {
            reader.fail(
                reader.join(reader.join(path, "secret_env"), key),
                "must be at least \(minimumSecretLength) bytes: a shorter secret would mask ordinary text in the logs")
        }
        if retries > 100 { reader.fail(reader.join(path, "retries"), "must be at most 100") }
        let priority = reader.integer(object, "priority", at: path, minimum: priorityRange.lowerBound, maximum: priorityRange.upperBound)
        guard reader.errors.count == before, let name, let command else { return nil }
        return TaskSpec(
            name: name, command: command, env: env, workspace: workspace, needs: needs, timeoutSeconds: timeout,
            retries: retries, allowFailure: allowFailure, labels: labels, secretEnv: secretEnv?.isEmpty == false ? secretEnv : nil,
            approval: approval, priority: priority)
    }

    /// `"approval": {"timeout_s"?: N}` (SPEC §10).
    private static func parseApproval(_ value: JSONValue?, at field: String, reader: inout FieldReader) -> ApprovalSpec? {
        guard let value, value != .null, let object = reader.object(value, at: field, allowed: ["timeout_s"]) else { return nil }
        return ApprovalSpec(timeoutSeconds: reader.integer(object, "timeout_s", at: field, minimum: 1, maximum: maxTimeoutSeconds))
    }

    private static func parseCommand(_ value: JSONValue?, at field: String, reader: inout FieldReader) -> TaskCommand? {
        switch value {
        case .none, .some(.null):
            reader.fail(field, "is required")
        case .string(let script):
            if script.trimmingCharacters(in: .whitespaces).isEmpty {
                reader.fail(field, "must not be empty")
            } else {
                return .shell(script)
            }
        case .array(let items):
            let argv = items.compactMap { item -> String? in
                if case .string(let text) = item { return text }
                return nil
            }
            if items.isEmpty {
                reader.fail(field, "must not be empty")
            } else if argv.count != items.count {
                reader.fail(field, "must be an array of strings")
            } else if argv[0].isEmpty {
                reader.fail("\(field)[0]", "the program must not be empty")
            } else {
                return .argv(argv)
            }
        case .some(let other):
            reader.fail(field, "must be an argv array or a shell string, not \(other.typeName)")
        }
        return nil
    }
}
