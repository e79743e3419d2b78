import Foundation
import HTTPTypes
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import Testing

/// A `POST /v1/webhooks` body that must be refused, and the fields its `422` must name.
struct BadSubscription: Sendable, CustomTestStringConvertible {
    let label: String
    let body: String
    let fields: Set<String>

    var testDescription: String { label }

    static let all: [BadSubscription] = [
        .init(label: "an ftp:// url", body: #"{"url":"ftp://127.0.0.1/hook"}"#, fields: ["url"]),
        .init(label: "a relative url", body: #"{"url":"/hook"}"#, fields: ["url"]),
        .init(label: "a url that is no URL", body: #"{"url":"not a url"}"#, fields: ["url"]),
        .init(label: "no url", body: #"{"events":["run.*"]}"#, fields: ["url"]),
        .init(label: "a url that is not a string", body: #"{"url":42}"#, fields: ["url"]),
        .init(label: "an unknown event type", body: #"{"url":"http://127.0.0.1:9/h","events":["run.exploded"]}"#, fields: ["events[0]"]),
        .init(label: "an unknown event pattern", body: #"{"url":"http://127.0.0.1:9/h","events":["run.*","job.*"]}"#, fields: ["events[1]"]),
        .init(label: "an empty event list", body: #"{"url":"http://127.0.0.1:9/h","events":[]}"#, fields: ["events"]),
        .init(label: "events that are not a list", body: #"{"url":"http://127.0.0.1:9/h","events":"run.*"}"#, fields: ["events"]),
        .init(label: "a secret without the whsec_ prefix", body: #"{"url":"http://127.0.0.1:9/h","secret":"c2VjcmV0"}"#, fields: ["secret"]),
        .init(label: "a secret that is not base64", body: #"{"url":"http://127.0.0.1:9/h","secret":"whsec_!!not-base64!!"}"#, fields: ["secret"]),
        .init(label: "a secret with an empty key", body: #"{"url":"http://127.0.0.1:9/h","secret":"whsec_"}"#, fields: ["secret"]),
        .init(label: "an unknown field", body: #"{"url":"http://127.0.0.1:9/h","colour":"red"}"#, fields: ["colour"]),
        .init(label: "a body that is not an object", body: #"["http://127.0.0.1:9/h"]"#, fields: ["body"]),
    ]
}

/// Subscriptions and the delivery-log routes (SPEC §2, §3) at the router, with the dispatcher off.
@Suite("Webhook API")
struct WebhookAPITests {
    @Test("Creating a subscription answers 201 with a wh_ id, a generated whsec_ secret, run.* by default and status active")
    func createWithDefaults() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/webhooks", json: #"{"url":"http://127.0.0.1:9/hook"}"#)
            let created = try response.json()
            let id = created["id"]?.asString ?? ""
            let secret = created["secret"]?.asString ?? ""

            #expect(response.status == .created, "body: \(response.text)")
            #expect(id.hasPrefix("wh_"))
            #expect(response.headers[.location] == "/v1/webhooks/\(id)")
            #expect(created["url"]?.asString == "http://127.0.0.1:9/hook")
            #expect(secret.hasPrefix("whsec_"))
            #expect(Data(base64Encoded: String(secret.dropFirst("whsec_".count)))?.isEmpty == false, "secret \(secret) is not whsec_ + base64")
            #expect(created["events"] == JSONValue(strings: ["run.*"]))
            #expect(created["status"]?.asString == "active")
            #expect(created["disabled_reason"]?.isNull == true)
            #expect(milliseconds(created["created_at"]?.asString) != nil)
        }
    }

    @Test("Two subscriptions get different generated secrets")
    func generatedSecretsDiffer() async throws {
        try await withApp { client in
            let first = try await client.subscribe(url: "http://127.0.0.1:9/a")["secret"]?.asString
            let second = try await client.subscribe(url: "http://127.0.0.1:9/b")["secret"]?.asString

            #expect(first != nil && second != nil)
            #expect(first != second)
        }
    }

    @Test("A given secret, event list and description are kept, and the given secret is echoed once")
    func createWithEverything() async throws {
        try await withApp { client in
            let secret = makeWebhookSecret()
            let created = try await client.subscribe(
                url: "https://ci.example/hook", events: ["run.*", "task.failed", "task.retrying"], secret: secret, description: "CI")

            #expect(created["secret"]?.asString == secret)
            #expect(created["events"] == JSONValue(strings: ["run.*", "task.failed", "task.retrying"]))
            #expect(created["description"]?.asString == "CI")
        }
    }

    @Test("Every event pattern SPEC names is accepted: *, run.*, task.*, run.created, run.<status>, task.<status>, task.retrying")
    func everyPatternIsAccepted() async throws {
        try await withApp { client in
            let patterns = [
                "*", "run.*", "task.*", "run.created", "run.running", "run.canceling", "run.succeeded", "run.failed",
                "run.canceled", "run.timed_out", "task.pending", "task.queued", "task.dispatched", "task.running",
                "task.canceling", "task.succeeded", "task.failed", "task.canceled", "task.timed_out", "task.skipped",
                "task.retrying",
            ]
            let created = try await client.subscribe(url: "http://127.0.0.1:9/h", events: patterns)

            #expect(created["events"] == JSONValue(strings: patterns))
        }
    }

    @Test("The subscription list never shows a secret")
    func listHidesSecrets() async throws {
        try await withApp { client in
            let created = try await client.subscribe(url: "http://127.0.0.1:9/hook", secret: makeWebhookSecret())
            let list = try await client.getJSON("/v1/webhooks")
            let items = list["items"]?.asArray ?? []

            #expect(items.count == 1)
            #expect(items.first?["id"] == created["id"])
            #expect(items.first?["status"]?.asString == "active")
            #expect(items.first?["events"] == JSONValue(strings: ["run.*"]))
            #expect(items.first?["secret"] == nil, "a listed subscription shows its secret: \(items.first.map { String(describing: $0) } ?? "")")
            #expect(list["next_cursor"]?.isNull == true)
        }
    }

    @Test("The Location of a create answers the subscription without its secret; an unknown id is 404 webhook_not_found")
    func locationResolves() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/webhooks", json: #"{"url":"http://127.0.0.1:9/hook","events":["task.*"]}"#)
            let location = try #require(response.headers[.location])
            let shown = try await client.send(.get, location)
            let body = try shown.json()

            #expect(shown.status == .ok, "body: \(shown.text)")
            #expect(body["id"] == (try response.json())["id"])
            #expect(body["events"] == JSONValue(strings: ["task.*"]))
            #expect(body["secret"] == nil, "GET shows the secret: \(shown.text)")
            let missing = try await client.send(.get, "/v1/webhooks/wh_nope")
            let code = try missing.json()["error"]?["code"]?.asString
            #expect(missing.status == .notFound && code == "webhook_not_found", "\(missing.text)")
        }
    }

    @Test("The subscription list pages with limit and next_cursor")
    func listPages() async throws {
        try await withApp { client in
            var ids: [String] = []
            for index in 0..<3 { ids.append(try await client.subscribe(url: "http://127.0.0.1:9/h\(index)")["id"]?.asString ?? "") }
            let first = try await client.getJSON("/v1/webhooks?limit=2")
            let cursor = first["next_cursor"]?.asString ?? ""
            let second = try await client.getJSON("/v1/webhooks?limit=2&cursor=\(cursor)")
            let seen = ((first["items"]?.asArray ?? []) + (second["items"]?.asArray ?? [])).compactMap { $0["id"]?.asString }

            #expect(first["items"]?.asArray?.count == 2)
            #expect(!cursor.isEmpty)
            #expect(second["items"]?.asArray?.count == 1)
            #expect(second["next_cursor"]?.isNull == true)
            #expect(Set(seen) == Set(ids) && seen.count == 3)
        }
    }

    @Test("A subscription body that breaks the rules answers 422 validation_failed naming the field", arguments: BadSubscription.all)
    func badSubscriptionIsRefused(_ bad: BadSubscription) async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/webhooks", json: bad.body)
            let fields = Set(try response.errorObject()?["details"]?.asArray?.compactMap { $0["field"]?.asString } ?? [])
            let list = try await client.getJSON("/v1/webhooks")

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(fields == bad.fields)
            #expect(list["items"]?.asArray?.isEmpty == true, "a refused subscription was stored")
        }
    }

    @Test("A subscription body that is not JSON answers 400 invalid_json")
    func malformedSubscriptionIsInvalidJSON() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/webhooks", json: #"{"url": "http://127.0.0.1:9/h""#)

            try expectError(response, .badRequest, "invalid_json")
        }
    }

    @Test("Deleting a subscription answers 204; after that it is 404 webhook_not_found and gone from the list")
    func deleteThenNotFound() async throws {
        try await withApp { client in
            let id = try await client.subscribe(url: "http://127.0.0.1:9/hook")["id"]?.asString ?? ""
            let deleted = try await client.send(.delete, "/v1/webhooks/\(id)")
            let again = try await client.send(.delete, "/v1/webhooks/\(id)")
            let deliveries = try await client.send(.get, "/v1/webhooks/\(id)/deliveries")
            let recover = try await client.send(.post, "/v1/webhooks/\(id)/recover", json: #"{"since":"2026-01-01T00:00:00.000Z"}"#)
            let list = try await client.getJSON("/v1/webhooks")

            #expect(deleted.status == .noContent)
            #expect(deleted.body.readableBytes == 0)
            try expectError(again, .notFound, "webhook_not_found")
            try expectError(deliveries, .notFound, "webhook_not_found")
            try expectError(recover, .notFound, "webhook_not_found")
            #expect(list["items"]?.asArray?.isEmpty == true)
        }
    }

    @Test("Unknown ids: deliveries and recover of an unknown subscription are 404 webhook_not_found, retry of an unknown delivery 404 delivery_not_found")
    func unknownIds() async throws {
        try await withApp { client in
            let deliveries = try await client.send(.get, "/v1/webhooks/wh_unknown/deliveries")
            let recover = try await client.send(.post, "/v1/webhooks/wh_unknown/recover", json: #"{"since":"2026-01-01T00:00:00.000Z"}"#)
            let delete = try await client.send(.delete, "/v1/webhooks/wh_unknown")
            let retry = try await client.send(.post, "/v1/deliveries/dlv_unknown/retry")

            try expectError(deliveries, .notFound, "webhook_not_found")
            try expectError(recover, .notFound, "webhook_not_found")
            try expectError(delete, .notFound, "webhook_not_found")
            try expectError(retry, .notFound, "delivery_not_found")
        }
    }

    @Test(
        "Recover with a since that is missing, not a timestamp or not a string, or with unknown fields, answers 422 validation_failed",
        arguments: [
            #"{"since":"yesterday"}"#, #"{"since":"2026-13-45T99:00:00Z"}"#, #"{"since":42}"#, #"{}"#,
            #"{"since":"2026-01-01T00:00:00.000Z","until":"2027-01-01T00:00:00.000Z"}"#, #"[]"#,
        ])
    func recoverWithBadSinceIsRefused(body: String) async throws {
        try await withApp { client in
            let id = try await client.subscribe(url: "http://127.0.0.1:9/hook")["id"]?.asString ?? ""
            let response = try await client.send(.post, "/v1/webhooks/\(id)/recover", json: body)
            let details = try response.errorObject()?["details"]?.asArray ?? []

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(!details.isEmpty)
        }
    }

    @Test("Recover with nothing failed answers 202 with requeued 0")
    func recoverNothing() async throws {
        try await withApp { client in
            let id = try await client.subscribe(url: "http://127.0.0.1:9/hook")["id"]?.asString ?? ""
            try await client.driveOneTaskRun()
            let response = try await client.send(.post, "/v1/webhooks/\(id)/recover", json: #"{"since":"2020-01-01T00:00:00.000Z"}"#)
            let log = try await client.deliveryLog(id)

            #expect(response.status == .accepted, "body: \(response.text)")
            #expect(try response.json()["requeued"]?.asInt == 0)
            #expect(log.allSatisfy { $0.deliveryStatus == "pending" })
        }
    }

    @Test("The outbox is written with the events: each run.* event gets one pending delivery at once, none for other types")
    func outboxRowsComeWithTheEvents() async throws {
        try await withApp { client in
            let all = try await client.subscribe(url: "http://127.0.0.1:9/all")["id"]?.asString ?? ""
            let failedOnly = try await client.subscribe(url: "http://127.0.0.1:9/failed", events: ["task.failed"])["id"]?.asString ?? ""
            let everything = try await client.subscribe(url: "http://127.0.0.1:9/every", events: ["*"])["id"]?.asString ?? ""
            let (runID, _) = try await client.driveOneTaskRun()
            let events = try await client.timeline(runID)
            let log = try await client.deliveryLog(all)
            let everyLog = try await client.deliveryLog(everything)
            let failedLog = try await client.deliveryLog(failedOnly)

            let runEvents = events.filter { $0["type"]?.asString?.hasPrefix("run.") == true }
            #expect(runEvents.compactMap { $0["type"]?.asString } == ["run.created", "run.running", "run.succeeded"])
            #expect(log.compactMap { $0["event_id"]?.asString } == runEvents.compactMap { $0["id"]?.asString })
            #expect(log.compactMap { $0["type"]?.asString } == ["run.created", "run.running", "run.succeeded"])
            #expect(log.compactMap { $0["seq"]?.asInt } == runEvents.compactMap { $0["seq"]?.asInt })
            #expect(log.allSatisfy { $0["id"]?.asString?.hasPrefix("dlv_") == true })
            #expect(log.allSatisfy { $0.deliveryStatus == "pending" && $0.attempts.isEmpty && $0["next_attempt_at"]?.asString != nil })
            #expect(log.allSatisfy { $0["run_id"]?.asString == runID })
            // `*` also takes the runner's own event: the claim brought it online.
            #expect(everyLog.filter { $0["run_id"]?.isNull == false }.compactMap { $0["event_id"]?.asString } == events.compactMap { $0["id"]?.asString })
            #expect(everyLog.filter { $0["run_id"]?.isNull == true }.compactMap { $0["type"]?.asString } == ["runner.online"])
            #expect(failedLog.isEmpty, "a task.failed subscription got deliveries of a run that did not fail: \(failedLog)")
        }
    }

    @Test("A subscription gets only events committed after it was created")
    func noBackfillForNewSubscriptions() async throws {
        try await withApp { client in
            let (runID, _) = try await client.driveOneTaskRun()
            let id = try await client.subscribe(url: "http://127.0.0.1:9/late")["id"]?.asString ?? ""
            let before = try await client.deliveryLog(id)
            let (secondRunID, _) = try await client.driveOneTaskRun()
            let after = try await client.deliveryLog(id)

            #expect(before.isEmpty)
            #expect(after.count == 3)
            #expect(after.allSatisfy { $0["run_id"]?.asString == secondRunID && $0["run_id"]?.asString != runID })
        }
    }

    @Test("Manual retry of a delivery answers 202 with the delivery, pending and due now")
    func manualRetryAnswers202() async throws {
        try await withApp { client in
            let id = try await client.subscribe(url: "http://127.0.0.1:9/hook")["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let delivery = try await client.deliveryLog(id).first
            let deliveryID = delivery?["id"]?.asString ?? ""
            let response = try await client.send(.post, "/v1/deliveries/\(deliveryID)/retry")
            let answer = try response.json()

            #expect(response.status == .accepted, "body: \(response.text)")
            #expect(answer["id"]?.asString == deliveryID)
            #expect(answer["event_id"] == delivery?["event_id"])
            #expect(answer["status"]?.asString == "pending")
            #expect(answer["next_attempt_at"]?.asString != nil)
        }
    }

    @Test("A run with a callback_url and no secret gets a generated whsec_ callback_secret, shown once in the create answer only")
    func generatedCallbackSecretIsShownOnce() async throws {
        try await withApp { client in
            let created = try await client.createRun(
                runBody(tasks: "[\(taskJSON("build"))]", extra: #""callback_url":"http://127.0.0.1:9/callback""#))
            let runID = created["id"]?.asString ?? ""
            let secret = created["callback_secret"]?.asString ?? ""
            let snapshot = try await client.snapshot(runID)
            let list = try await client.getJSON("/v1/runs")
            let events = try await client.getJSON("/v1/runs/\(runID)/events")

            #expect(secret.hasPrefix("whsec_"))
            #expect(Data(base64Encoded: String(secret.dropFirst("whsec_".count)))?.isEmpty == false)
            #expect(snapshot["callback_secret"] == nil)
            #expect(list["items"]?.asArray?.first?["callback_secret"] == nil)
            for text in [snapshot, list, events].map({ String(decoding: $0.encoded(), as: UTF8.self) }) {
                #expect(!text.contains(secret), "the callback secret leaks after the create answer")
            }
        }
    }

    @Test("A run without a callback_url gets no callback_secret")
    func noCallbackNoSecret() async throws {
        try await withApp { client in
            let created = try await client.createRun(oneTaskRun)

            #expect(created["callback_secret"] == nil)
        }
    }

    @Test(
        "Every webhook route refuses the runner token with 403 forbidden",
        arguments: [
            (HTTPRequest.Method.post, "/v1/webhooks", #"{"url":"http://127.0.0.1:9/h"}"#), (.get, "/v1/webhooks", nil),
            (.delete, "/v1/webhooks/wh_x", nil), (.get, "/v1/webhooks/wh_x/deliveries", nil),
            (.post, "/v1/webhooks/wh_x/recover", #"{"since":"2026-01-01T00:00:00.000Z"}"#), (.post, "/v1/deliveries/dlv_x/retry", nil),
        ] as [(HTTPRequest.Method, String, String?)])
    func webhookRoutesNeedTheClientToken(method: HTTPRequest.Method, path: String, body: String?) async throws {
        try await withTokenApp { client in
            let withRunnerToken = try await client.send(method, path, json: body, token: Tokens.runner)
            let withoutToken = try await client.send(method, path, json: body)
            let list = try await client.getJSON("/v1/webhooks", token: Tokens.client)

            try expectError(withRunnerToken, .forbidden, "forbidden")
            try expectError(withoutToken, .unauthorized, "unauthorized")
            #expect(list["items"]?.asArray?.isEmpty == true)
        }
    }

    @Test("With the client token every webhook route works")
    func webhookRoutesWorkWithTheClientToken() async throws {
        try await withTokenApp { client in
            let created = try await client.subscribe(url: "http://127.0.0.1:9/h", token: Tokens.client)
            let id = created["id"]?.asString ?? ""
            let list = try await client.send(.get, "/v1/webhooks", token: Tokens.client)
            let deliveries = try await client.send(.get, "/v1/webhooks/\(id)/deliveries", token: Tokens.client)
            let recover = try await client.send(
                .post, "/v1/webhooks/\(id)/recover", json: #"{"since":"2026-01-01T00:00:00.000Z"}"#, token: Tokens.client)
            let delete = try await client.send(.delete, "/v1/webhooks/\(id)", token: Tokens.client)

            #expect(id.hasPrefix("wh_"))
            #expect(list.status == .ok)
            #expect(deliveries.status == .ok)
            #expect(recover.status == .accepted)
            #expect(delete.status == .noContent)
        }
    }
}
