import HummingbirdTesting
import RunwardenCore
import Testing

/// A create body that breaks one rule of SPEC §2 "Create body", and the fields `details` may name.
struct BadCreate: Sendable, CustomTestStringConvertible {
    let label: String
    let body: String
    let fields: Set<String>

    init(_ label: String, _ body: String, fields: Set<String>) {
        self.label = label
        self.body = body
        self.fields = fields
    }

    var testDescription: String { label }

    static let all: [BadCreate] = [
        BadCreate("body not an object", #"[1,2]"#, fields: ["body"]),
        BadCreate("missing workflow", #"{"tasks":[{"name":"a","command":["true"]}]}"#, fields: ["workflow"]),
        BadCreate("empty workflow", #"{"workflow":"","tasks":[{"name":"a","command":["true"]}]}"#, fields: ["workflow"]),
        BadCreate("empty tasks", #"{"workflow":"w","tasks":[]}"#, fields: ["tasks"]),
        BadCreate("missing tasks", #"{"workflow":"w"}"#, fields: ["tasks"]),
        BadCreate("tasks not an array", #"{"workflow":"w","tasks":{"name":"a"}}"#, fields: ["tasks"]),
        BadCreate("task without command", #"{"workflow":"w","tasks":[{"name":"a"}]}"#, fields: ["tasks[0].command"]),
        BadCreate("task without name", #"{"workflow":"w","tasks":[{"command":["true"]}]}"#, fields: ["tasks[0].name"]),
        BadCreate("empty argv", #"{"workflow":"w","tasks":[{"name":"a","command":[]}]}"#, fields: ["tasks[0].command"]),
        BadCreate("empty shell string", #"{"workflow":"w","tasks":[{"name":"a","command":"  "}]}"#, fields: ["tasks[0].command"]),
        BadCreate("command a number", #"{"workflow":"w","tasks":[{"name":"a","command":42}]}"#, fields: ["tasks[0].command"]),
        BadCreate(
            "argv with a non-string", #"{"workflow":"w","tasks":[{"name":"a","command":["echo",1]}]}"#,
            fields: ["tasks[0].command", "tasks[0].command[1]"]),
        BadCreate(
            "duplicate names", #"{"workflow":"w","tasks":[{"name":"a","command":["true"]},{"name":"a","command":["true"]}]}"#,
            fields: ["tasks[1].name"]),
        BadCreate(
            "unknown need", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"needs":["nope"]}]}"#,
            fields: ["tasks[0].needs"]),
        BadCreate("self need", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"needs":["a"]}]}"#, fields: ["tasks[0].needs"]),
        BadCreate(
            "a cycle a→b→a",
            #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"needs":["b"]},{"name":"b","command":["true"],"needs":["a"]}]}"#,
            fields: ["tasks[0].needs", "tasks[1].needs"]),
        BadCreate(
            "negative retries", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"retries":-1}]}"#,
            fields: ["tasks[0].retries"]),
        BadCreate("run timeout_s 0", #"{"workflow":"w","timeout_s":0,"tasks":[{"name":"a","command":["true"]}]}"#, fields: ["timeout_s"]),
        BadCreate(
            "task timeout_s 0", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"timeout_s":0}]}"#,
            fields: ["tasks[0].timeout_s"]),
        BadCreate(
            "task timeout_s 1.5", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"timeout_s":1.5}]}"#,
            fields: ["tasks[0].timeout_s"]),
        BadCreate(
            "timeout_s a string", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"timeout_s":"60"}]}"#,
            fields: ["tasks[0].timeout_s"]),
        BadCreate(
            "env with a non-string value", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"env":{"CI":1}}]}"#,
            fields: ["tasks[0].env", "tasks[0].env.CI"]),
        BadCreate(
            "unknown field on the run", #"{"workflow":"w","colour":"red","tasks":[{"name":"a","command":["true"]}]}"#,
            fields: ["colour"]),
        BadCreate(
            "unknown field on a task", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"timeout":5}]}"#,
            fields: ["tasks[0].timeout"]),
        BadCreate(
            "labels not strings", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"labels":[1]}]}"#,
            fields: ["tasks[0].labels", "tasks[0].labels[0]"]),
        BadCreate(
            "allow_failure not a boolean", #"{"workflow":"w","tasks":[{"name":"a","command":["true"],"allow_failure":"yes"}]}"#,
            fields: ["tasks[0].allow_failure"]),
        BadCreate("metadata not an object", #"{"workflow":"w","metadata":[],"tasks":[{"name":"a","command":["true"]}]}"#, fields: ["metadata"]),
    ]
}

/// Every error answers SPEC §2's envelope with the right status and code.
@Suite("Error envelope")
struct ErrorEnvelopeTests {
    @Test("An unknown path answers 404 route_not_found in the JSON envelope")
    func unknownPathIsRouteNotFound() async throws {
        try await withApp { client in
            let response = try await client.send(.get, "/v1/nothing-here")

            try expectError(response, .notFound, "route_not_found")
        }
    }

    @Test("An unknown path outside /v1 answers 404 route_not_found too")
    func unknownRootPathIsRouteNotFound() async throws {
        try await withApp { client in
            let response = try await client.send(.get, "/")

            try expectError(response, .notFound, "route_not_found")
        }
    }

    @Test("A wrong method on a known path answers 405 method_not_allowed with Allow")
    func wrongMethodIsMethodNotAllowed() async throws {
        try await withApp { client in
            let response = try await client.send(.delete, "/v1/runs")

            try expectError(response, .methodNotAllowed, "method_not_allowed")
            #expect(response.headers[.allow]?.contains("GET") == true)
            #expect(response.headers[.allow]?.contains("POST") == true)
        }
    }

    @Test("A wrong method on a path with an id answers 405 method_not_allowed")
    func wrongMethodOnParameterisedPath() async throws {
        try await withApp { client in
            let response = try await client.send(.get, "/v1/runs/run_01JZZZZZZZZZZZZZZZZZZZZZZZ/cancel")

            try expectError(response, .methodNotAllowed, "method_not_allowed")
            #expect(response.headers[.allow] == "POST")
        }
    }

    @Test("Malformed JSON answers 400 invalid_json", arguments: [#"{"workflow":"#, "not json", #"{"workflow":'w'}"#, #"{"a":1} {"b":2}"#])
    func malformedJSONIsInvalid(body: String) async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runs", json: body)

            try expectError(response, .badRequest, "invalid_json")
        }
    }

    @Test(
        "A create body with a trailing comma answers 400 invalid_json",
        arguments: [
            #"{"workflow":"w","tasks":[{"name":"a","command":["true"]}],}"#,
            #"{"workflow":"w","tasks":[{"name":"a","command":["true",]}]}"#,
        ])
    func trailingCommaIsInvalidJSON(body: String) async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runs", json: body)

            try expectError(response, .badRequest, "invalid_json")
        }
    }

    @Test("An empty create body answers 400 invalid_json")
    func emptyBodyIsInvalid() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runs")

            try expectError(response, .badRequest, "invalid_json")
        }
    }

    @Test("Malformed JSON in a status report answers 400 invalid_json")
    func malformedReportJSONIsInvalid() async throws {
        try await withApp { client in
            let response = try await client.report("task_01JZZZZZZZZZZZZZZZZZZZZZZZ", #"{"status":"#)

            try expectError(response, .badRequest, "invalid_json")
        }
    }

    @Test("A create body of the wrong shape answers 422 validation_failed with details naming the field", arguments: BadCreate.all)
    func wrongShapeIsValidationFailed(_ bad: BadCreate) async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runs", json: bad.body)
            let details = try response.errorObject()?["details"]?.asArray ?? []
            let fields = details.compactMap { $0["field"]?.asString }
            let messages = details.compactMap { $0["message"]?.asString }

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(!fields.isEmpty)
            #expect(fields.allSatisfy(bad.fields.contains), "details named \(fields), expected one of \(bad.fields)")
            #expect(messages.count == fields.count && messages.allSatisfy { !$0.isEmpty })
        }
    }

    @Test("A 422 lists every broken rule, not only the first")
    func validationListsEveryError() async throws {
        try await withApp { client in
            let response = try await client.send(
                .post, "/v1/runs", json: #"{"workflow":"","tasks":[{"name":"a","command":[],"retries":-1}]}"#)
            let fields = Set(try response.errorObject()?["details"]?.asArray?.compactMap { $0["field"]?.asString } ?? [])

            #expect(response.status == .unprocessableContent)
            #expect(fields == ["workflow", "tasks[0].command", "tasks[0].retries"])
        }
    }

    @Test("No bad create stores anything: the run list and the event log stay empty")
    func badCreatesChangeNothing() async throws {
        try await withApp { client in
            var statuses: [Int] = []
            for bad in BadCreate.all {
                statuses.append(try await client.send(.post, "/v1/runs", json: bad.body).status.code)
            }
            statuses.append(try await client.send(.post, "/v1/runs", json: #"{"workflow":"#).status.code)
            let runs = try await client.getJSON("/v1/runs")
            let events = try await client.getJSON("/v1/events")

            #expect(statuses.allSatisfy { $0 == 422 || $0 == 400 })
            #expect(runs["items"]?.asArray?.isEmpty == true)
            #expect(events["events"]?.asArray?.isEmpty == true)
        }
    }

    @Test("A body over --max-body answers 413 payload_too_large and stores nothing")
    func oversizedBodyIsPayloadTooLarge() async throws {
        try await withApp({ $0.maxBodyBytes = 1024 }) { client in
            let padding = String(repeating: "x", count: 2000)
            let body = runBody(tasks: "[\(taskJSON("build"))]", extra: #""metadata":{"pad":"\#(padding)"}"#)
            let response = try await client.send(.post, "/v1/runs", json: body)
            let runs = try await client.getJSON("/v1/runs")

            try expectError(response, .contentTooLarge, "payload_too_large")
            #expect(runs["items"]?.asArray?.isEmpty == true)
        }
    }

    @Test("A body under --max-body is accepted")
    func bodyUnderTheLimitIsAccepted() async throws {
        try await withApp({ $0.maxBodyBytes = 1024 }) { client in
            let response = try await client.send(.post, "/v1/runs", json: oneTaskRun)

            #expect(response.status == .accepted)
        }
    }

    @Test("A run of more tasks than --max-tasks answers 422 naming tasks and stores nothing; as many is accepted")
    func tooManyTasksAreRefused() async throws {
        try await withApp({ $0.maxTasks = 3 }) { client in
            let four = try await client.send(.post, "/v1/runs", json: runBody(tasks: "[" + (1...4).map { taskJSON("t\($0)") }.joined(separator: ",") + "]"))
            let details = try four.errorObject()?["details"]?.asArray ?? []
            #expect(details.compactMap { $0["field"]?.asString } == ["tasks"])
            #expect(details.first?["message"]?.asString == "must list at most 3 tasks")
            try expectError(four, .unprocessableContent, "validation_failed")
            #expect(try await client.getJSON("/v1/runs")["items"]?.asArray?.isEmpty == true)

            let three = try await client.send(.post, "/v1/runs", json: runBody(tasks: "[" + (1...3).map { taskJSON("t\($0)") }.joined(separator: ",") + "]"))
            #expect(three.status == .accepted)
        }
    }

    @Test("An unknown run id answers 404 run_not_found", arguments: ["run_01JZZZZZZZZZZZZZZZZZZZZZZZ", "not-an-id"])
    func unknownRunIsRunNotFound(id: String) async throws {
        try await withApp { client in
            let response = try await client.send(.get, "/v1/runs/\(id)")

            try expectError(response, .notFound, "run_not_found")
        }
    }

    @Test("Cancel of an unknown run answers 404 run_not_found")
    func cancelUnknownRunIsRunNotFound() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runs/run_01JZZZZZZZZZZZZZZZZZZZZZZZ/cancel")

            try expectError(response, .notFound, "run_not_found")
        }
    }

    @Test("Events of an unknown run answer 404 run_not_found")
    func eventsOfUnknownRunIsRunNotFound() async throws {
        try await withApp { client in
            let response = try await client.send(.get, "/v1/runs/run_01JZZZZZZZZZZZZZZZZZZZZZZZ/events")

            try expectError(response, .notFound, "run_not_found")
        }
    }

    @Test("GET /v1/tasks of an unknown id answers 404 task_not_found")
    func unknownTaskIsTaskNotFound() async throws {
        try await withApp { client in
            let response = try await client.send(.get, "/v1/tasks/task_01JZZZZZZZZZZZZZZZZZZZZZZZ")

            try expectError(response, .notFound, "task_not_found")
        }
    }

    @Test("Malformed query parameters answer 422 validation_failed naming the parameter", arguments: [
        "/v1/runs?limit=0", "/v1/runs?limit=ten", "/v1/events?after=-1", "/v1/events?wait=soon", "/v1/runs?cursor=bogus",
    ])
    func malformedQueryIsValidationFailed(uri: String) async throws {
        try await withApp { client in
            let response = try await client.send(.get, uri)
            let field = try response.errorObject()?["details"]?.asArray?.first?["field"]?.asString
            let expected = uri.split(separator: "?").last?.split(separator: "=").first.map(String.init)

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(field == expected)
        }
    }

    @Test("A successful answer carries an X-Request-Id header")
    func successCarriesRequestID() async throws {
        try await withApp { client in
            let response = try await client.send(.get, "/healthz")

            #expect(response.status == .ok)
            #expect(response.headers[.xRequestID]?.isEmpty == false)
        }
    }
}
