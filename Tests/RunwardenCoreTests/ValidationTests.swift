import Testing
import RunwardenCore

@Suite("Create body validation")
struct ValidationTests {
    static let specExample = """
        {"workflow": "deploy",
         "tasks": [{"name": "build", "command": ["make", "build"], "workspace": "repo-a"},
                   {"name": "test", "command": "make test", "needs": ["build"],
                    "timeout_s": 600, "retries": 1, "allow_failure": false,
                    "labels": ["linux"], "env": {"CI": "1"}}],
         "timeout_s": 3600, "callback_url": "https://ci.example/hook", "callback_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
         "metadata": {"sha": "abc"}}
        """

    static func errors(_ body: String) -> [FieldError] {
        switch RunDefinition.parse(json(body)) {
        case .success: return []
        case .failure(let failure): return failure.errors
        }
    }

    @Test func theSpecExampleParsesIntoItsDefinition() throws {
        let definition = try RunDefinition.parse(json(Self.specExample)).get()
        #expect(definition.run.workflow == "deploy")
        #expect(definition.run.timeoutSeconds == 3600)
        #expect(definition.run.callbackURL == "https://ci.example/hook")
        #expect(definition.run.callbackSecret == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        #expect(definition.run.metadata?["sha"] == .string("abc"))
        #expect(definition.tasks.count == 2)
        let build = definition.tasks[0]
        #expect(build.name == "build")
        #expect(build.command == .argv(["make", "build"]))
        #expect(build.workspace == "repo-a")
        #expect(build.needs.isEmpty)
        #expect(build.timeoutSeconds == nil)
        #expect(build.retries == 0)
        #expect(build.allowFailure == false)
        #expect(build.labels.isEmpty)
        #expect(build.env.isEmpty)
        let test = definition.tasks[1]
        #expect(test.command == .shell("make test"))
        #expect(test.command.argv == ["/bin/sh", "-c", "make test"])
        #expect(test.needs == ["build"])
        #expect(test.timeoutSeconds == 600)
        #expect(test.retries == 1)
        #expect(test.labels == ["linux"])
        #expect(test.env == ["CI": "1"])
    }

    @Test func secretEnvReachesOnlyTheClaimAndShortSecretsAreRefused() throws {
        let body = #"{"workflow": "w", "tasks": [{"name": "a", "command": "true", "secret_env": {"TOKEN": "hunter22"}}]}"#
        let definition = try RunDefinition.parse(json(body)).get()
        #expect(definition.tasks[0].secretEnv == ["TOKEN": "hunter22"])
        let (run, _) = Run.create(
            definition, id: "run_1", taskIDs: ["task_1"], eventID: "evt_1", now: Timestamp(milliseconds: 1_767_225_600_000))
        #expect(Snapshot.claimed(run.tasks[0]).secretEnv == ["TOKEN": "hunter22"])
        let shown = String(decoding: JSONValueEncoder.data(Snapshot.run(run, lockHolders: [:])), as: UTF8.self)
        #expect(!shown.contains("hunter22"), "the snapshot shows the secret")

        let short = Self.errors(#"{"workflow": "w", "tasks": [{"name": "a", "command": "true", "secret_env": {"PIN": "123"}}]}"#)
        #expect(short.count == 1)
        #expect(short.first?.field.hasSuffix("PIN") == true)
        #expect(Self.errors(#"{"workflow": "w", "tasks": [{"name": "a", "command": "true", "secret_env": {"N": 5}}]}"#).count == 1)
    }

    @Test func aMinimalBodyIsValid() throws {
        let definition = try RunDefinition.parse(json(#"{"workflow": "w", "tasks": [{"name": "a", "command": "true"}]}"#)).get()
        #expect(definition.run.timeoutSeconds == nil)
        #expect(definition.run.metadata == nil)
        #expect(definition.tasks.map(\.name) == ["a"])
    }

    @Test func explicitNullsCountAsAbsentForOptionalFields() throws {
        let body = #"{"workflow": "w", "timeout_s": null, "metadata": null, "tasks": [{"name": "a", "command": "x", "needs": null, "env": null, "workspace": null}]}"#
        let definition = try RunDefinition.parse(json(body)).get()
        #expect(definition.run.timeoutSeconds == nil)
        #expect(definition.tasks[0].needs.isEmpty)
        #expect(definition.tasks[0].workspace == nil)
    }

    @Test(arguments: [
        // (body, field, a fragment of the message)
        (#"[]"#, "body", "object"),
        (#""deploy""#, "body", "object"),
        (#"{"tasks": [{"name": "a", "command": "x"}]}"#, "workflow", "required"),
        (#"{"workflow": "", "tasks": [{"name": "a", "command": "x"}]}"#, "workflow", "empty"),
        (#"{"workflow": 7, "tasks": [{"name": "a", "command": "x"}]}"#, "workflow", "string"),
        (#"{"workflow": null, "tasks": [{"name": "a", "command": "x"}]}"#, "workflow", "required"),
        (#"{"workflow": "w"}"#, "tasks", "required"),
        (#"{"workflow": "w", "tasks": []}"#, "tasks", "at least one"),
        (#"{"workflow": "w", "tasks": {"name": "a"}}"#, "tasks", "array"),
        (#"{"workflow": "w", "tasks": ["a"]}"#, "tasks[0]", "object"),
        (#"{"workflow": "w", "tasks": [{"command": "x"}]}"#, "tasks[0].name", "required"),
        (#"{"workflow": "w", "tasks": [{"name": 1, "command": "x"}]}"#, "tasks[0].name", "string"),
        (#"{"workflow": "w", "tasks": [{"name": "a"}]}"#, "tasks[0].command", "required"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": ""}]}"#, "tasks[0].command", "empty"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "   "}]}"#, "tasks[0].command", "empty"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": []}]}"#, "tasks[0].command", "empty"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": ["make", 1]}]}"#, "tasks[0].command", "strings"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": [""]}]}"#, "tasks[0].command[0]", "empty"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": {"run": "x"}}]}"#, "tasks[0].command", "argv"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": 5}]}"#, "tasks[0].command", "argv"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "env": {"CI": 1}}]}"#, "tasks[0].env.CI", "string"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "env": ["CI=1"]}]}"#, "tasks[0].env", "object"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "timeout_s": 0}]}"#, "tasks[0].timeout_s", "positive"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "timeout_s": -5}]}"#, "tasks[0].timeout_s", "positive"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "timeout_s": 1.5}]}"#, "tasks[0].timeout_s", "integer"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "timeout_s": "600"}]}"#, "tasks[0].timeout_s", "integer"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "timeout_s": true}]}"#, "tasks[0].timeout_s", "integer"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "retries": -1}]}"#, "tasks[0].retries", "at least 0"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "retries": 0.5}]}"#, "tasks[0].retries", "integer"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "allow_failure": "yes"}]}"#, "tasks[0].allow_failure", "true or false"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "allow_failure": 1}]}"#, "tasks[0].allow_failure", "true or false"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "labels": "linux"}]}"#, "tasks[0].labels", "array"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "labels": ["linux", 2]}]}"#, "tasks[0].labels[1]", "string"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "needs": "b"}]}"#, "tasks[0].needs", "array"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "workspace": 3}]}"#, "tasks[0].workspace", "string"),
        (#"{"workflow": "w", "timeout_s": 0, "tasks": [{"name": "a", "command": "x"}]}"#, "timeout_s", "positive"),
        (#"{"workflow": "w", "timeout_s": "1h", "tasks": [{"name": "a", "command": "x"}]}"#, "timeout_s", "integer"),
        (#"{"workflow": "w", "metadata": [1], "tasks": [{"name": "a", "command": "x"}]}"#, "metadata", "object"),
        (#"{"workflow": "w", "callback_url": "ftp://x", "tasks": [{"name": "a", "command": "x"}]}"#, "callback_url", "http"),
        (#"{"workflow": "w", "callback_url": 1, "tasks": [{"name": "a", "command": "x"}]}"#, "callback_url", "string"),
        (#"{"workflow": "w", "workflw": "typo", "tasks": [{"name": "a", "command": "x"}]}"#, "workflw", "not a known field"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "timeout": 5}]}"#, "tasks[0].timeout", "not a known field"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]}"#, "tasks[1].name", "duplicates"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x"}, {"name": "b", "command": "y", "needs": ["c"]}]}"#, "tasks[1].needs", "no task"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "needs": ["a"]}]}"#, "tasks[0].needs", "itself"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x"}, {"name": "b", "command": "y", "needs": ["a", "a"]}]}"#, "tasks[1].needs", "twice"),
        (#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "needs": ["b"]}, {"name": "b", "command": "y", "needs": ["a"]}]}"#, "tasks[0].needs", "cycle"),
    ])
    func aBodyThatBreaksARuleGetsAFieldErrorAtItsJSONPath(body: String, field: String, fragment: String) {
        let errors = Self.errors(body)
        #expect(!errors.isEmpty, "expected the body to be rejected")
        let match = errors.first { $0.field == field }
        #expect(match != nil, "no error for \(field); got \(errors.map(\.field))")
        #expect(match?.message.contains(fragment) == true, "message for \(field): \(match?.message ?? "-")")
    }

    @Test func metadataNestedDeeperThanTheLimitIsRefusedAndTheLimitItselfAccepted() {
        func body(depth: Int) -> String {
            // {"a": [[…]]}: the object is one level, the arrays the rest.
            let arrays = depth - 1
            return #"{"workflow": "w", "tasks": [{"name": "a", "command": "x"}], "metadata": {"a": "#
                + String(repeating: "[", count: arrays) + String(repeating: "]", count: arrays) + "}}"
        }
        #expect(Self.errors(body(depth: RunDefinition.maxMetadataDepth)).isEmpty)
        let refused = Self.errors(body(depth: RunDefinition.maxMetadataDepth + 1))
        #expect(refused.map(\.field) == ["metadata"])
        #expect(refused.first?.message.contains("at most 32") == true)
        #expect(Self.errors(body(depth: 510)).map(\.field) == ["metadata"])
    }

    @Test func everyBrokenRuleIsReportedAtOnce() {
        let errors = Self.errors(
            #"{"workflow": "", "extra": 1, "timeout_s": 0, "tasks": [{"name": "a"}, {"name": "b", "command": "x", "retries": -1, "colour": "red"}]}"#)
        #expect(Set(errors.map(\.field)) == ["workflow", "extra", "timeout_s", "tasks[0].command", "tasks[1].retries", "tasks[1].colour"])
    }

    @Test func aCycleIsNamedTaskByTaskAndClosesOnItsFirstTask() {
        let errors = Self.errors(
            #"{"workflow": "w", "tasks": [{"name": "start", "command": "x"}, {"name": "a", "command": "x", "needs": ["start", "c"]}, {"name": "b", "command": "x", "needs": ["a"]}, {"name": "c", "command": "x", "needs": ["b"]}]}"#)
        #expect(errors.count == 1)
        let error = errors.first
        #expect(error?.message.contains("cycle") == true)
        // The cycle a → c → b → a (a needs c, c needs b, b needs a), starting at whichever task the search met first.
        let message = error?.message ?? ""
        let names = message.components(separatedBy: ": ").last?.components(separatedBy: " → ") ?? []
        #expect(names.count == 4)
        #expect(names.first == names.last)
        #expect(Set(names) == ["a", "b", "c"])
        #expect(error?.field == "tasks[\(["start", "a", "b", "c"].firstIndex(of: names.first ?? "") ?? -1)].needs")
        let needs = ["start": [String](), "a": ["start", "c"], "b": ["a"], "c": ["b"]]
        for (from, to) in zip(names, names.dropFirst()) {
            #expect(needs[from]?.contains(to) == true, "\(from) does not need \(to)")
        }
    }

    @Test func aMaximalTaskChainValidatesWithoutExhaustingTheStack() throws {
        let count = RunDefinition.defaultMaxTasks
        var tasks: [JSONValue] = []
        for index in 0..<count {
            var members: [JSONValue.Member] = [.init("name", .string("t\(index)")), .init("command", .string("true"))]
            if index > 0 { members.append(.init("needs", .array([.string("t\(index - 1)")]))) }
            tasks.append(.object(members))
        }
        // Written last-first so the search has to walk the whole chain from its first start.
        let body = JSONValue.object(["workflow": .string("chain"), "tasks": .array(tasks.reversed())])
        let definition = try RunDefinition.parse(body).get()
        #expect(definition.tasks.count == count)
    }

    @Test func moreThanTheMaximumNumberOfTasksIsRejected() {
        let tasks = (0...RunDefinition.defaultMaxTasks).map { index in
            JSONValue.object(["name": .string("t\(index)"), "command": .string("true")])
        }
        let result = RunDefinition.parse(.object(["workflow": .string("w"), "tasks": .array(tasks)]))
        guard case .failure(let failure) = result else {
            Issue.record("accepted \(tasks.count) tasks")
            return
        }
        #expect(failure.errors.map(\.field) == ["tasks"])
    }

    @Test(arguments: [0, 1, 100])
    func retriesFromZeroToOneHundredAreAccepted(_ retries: Int) throws {
        let definition = try RunDefinition.parse(
            json(#"{"workflow": "w", "tasks": [{"name": "a", "command": "x", "retries": \#(retries)}]}"#)).get()
        #expect(definition.tasks[0].retries == retries)
    }

    @Test func anIntegralNumberWrittenWithAFractionIsAnInteger() throws {
        let definition = try RunDefinition.parse(
            json(#"{"workflow": "w", "timeout_s": 60.0, "tasks": [{"name": "a", "command": "x"}]}"#)).get()
        #expect(definition.run.timeoutSeconds == 60)
    }
}

@Suite("Priority validation")
struct PriorityValidationTests {
    @Test func aTaskInheritsItsRunsPriorityUnlessItHasItsOwn() throws {
        let body = json(#"{"workflow":"w","priority":7,"tasks":[{"name":"a","command":"x"},{"name":"b","command":"x","priority":-3}]}"#)
        let definition = try RunDefinition.parse(body).get()
        #expect(definition.run.priority == 7)
        #expect(definition.tasks.map(\.priority) == [7, -3])
        #expect(try RunDefinition.parse(json(#"{"workflow":"w","tasks":[{"name":"a","command":"x"}]}"#)).get().tasks[0].priority == 0)
    }

    @Test(arguments: [
        (#"{"workflow":"w","priority":101,"tasks":[{"name":"a","command":"x"}]}"#, "priority"),
        (#"{"workflow":"w","priority":-101,"tasks":[{"name":"a","command":"x"}]}"#, "priority"),
        (#"{"workflow":"w","tasks":[{"name":"a","command":"x","priority":1000000000000}]}"#, "tasks[0].priority"),
        (#"{"workflow":"w","tasks":[{"name":"a","command":"x","priority":"high"}]}"#, "tasks[0].priority"),
        (#"{"workflow":"w","tasks":[{"name":"a","command":"x","priority":1.5}]}"#, "tasks[0].priority"),
    ])
    func aPriorityOutOfRangeIs422(body: String, field: String) {
        guard case .failure(let failure) = RunDefinition.parse(json(body)) else {
            Issue.record("accepted: \(body)")
            return
        }
        #expect(failure.errors.map(\.field) == [field])
    }
}
