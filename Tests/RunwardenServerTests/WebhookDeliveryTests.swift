import Foundation
import HummingbirdTesting
import RunwardenCore
import RunwardenServer
import RunwardenTestSupport
import Testing

/// Webhook delivery (SPEC §3) end to end: the real app with its dispatcher on, over a live
/// loopback socket, delivering to `Tests/Support/webhook_scripted_receiver.py`, which verifies
/// every signature with the Standard Webhooks reference implementation from PyPI. The Python
/// package is installed by the tests themselves (`ReferenceVerifier`); if that fails, these
/// tests fail — they never skip.
@Suite("Webhook delivery")
struct WebhookDeliveryTests {
    /// The run status each run.* event's embedded snapshot must show: the run as of that event.
    static let runStatusAsOf = [
        "run.created": "queued", "run.running": "running", "run.succeeded": "succeeded", "run.failed": "failed",
    ]

    /// What the first delivery test saw, checked outside the app's closure.
    struct Observed: Sendable {
        var allSecret = ""
        var good = (runID: "", taskID: "")
        var bad = (runID: "", taskID: "")
        var requests: [ReceivedRequest] = []
        var timeline: [JSONValue] = []
        var logs: [[JSONValue]] = []
        var now = 0.0
    }

    @Test("Every run event arrives signed so that the Standard Webhooks reference implementation verifies it, with the SPEC payload")
    func everyRunEventArrivesVerified() async throws {
        let observed = try await withDeliveryApp { client in
            var observed = Observed()
            let port = try freeLoopbackPort()
            let all = try await client.subscribe(url: "http://127.0.0.1:\(port)/all")
            observed.allSecret = all["secret"]?.asString ?? ""
            let failedSecret = makeWebhookSecret()
            let failedOnly = try await client.subscribe(url: "http://127.0.0.1:\(port)/failed", events: ["task.failed"], secret: failedSecret)
            // A control: signed with a secret the receiver does not know, so the verifier must reject it.
            let stranger = try await client.subscribe(
                url: "http://127.0.0.1:\(port)/stranger", events: ["run.created"], secret: makeWebhookSecret())
            let receiver = try await ScriptedReceiver.start(secrets: [observed.allSecret, failedSecret], port: port)
            defer { receiver.stop() }

            observed.good = try await client.driveOneTaskRun()
            observed.bad = try await client.driveOneTaskRun(succeed: false)
            observed.requests = try await receiver.waitForRequests(until: Self.sawEveryExpectedRequest)
            observed.now = Date().timeIntervalSince1970
            let goodTimeline = try await client.timeline(observed.good.runID)
            let badTimeline = try await client.timeline(observed.bad.runID)
            observed.timeline = goodTimeline + badTimeline
            for id in [all["id"], failedOnly["id"], stranger["id"]].compactMap({ $0?.asString }) {
                observed.logs.append(try await client.waitForDeliveryLog(id, until: Self.allSucceeded))
            }
            return observed
        }
        Self.checkSignaturesAndPayloads(observed)
    }

    @Sendable static func sawEveryExpectedRequest(_ requests: [ReceivedRequest]) -> Bool {
        requests.filter { $0.path == "/all" }.count >= 6 && requests.filter { $0.path == "/failed" }.count >= 1
            && requests.filter { $0.path == "/stranger" }.count >= 2
    }

    static func allSucceeded(_ log: [JSONValue]) -> Bool { log.allSatisfy { $0.deliveryStatus == "succeeded" } }

    static func checkSignaturesAndPayloads(_ observed: Observed) {
        let (good, bad, requests, timeline) = (observed.good, observed.bad, observed.requests, observed.timeline)
        var eventsByID: [String: JSONValue] = [:]
        for event in timeline { eventsByID[event["id"]?.asString ?? ""] = event }
        let runEventIDs = timeline.filter { $0["type"]?.asString?.hasPrefix("run.") == true }.compactMap { $0["id"]?.asString }
        let toAll = requests.filter { $0.path == "/all" }
        let toFailed = requests.filter { $0.path == "/failed" }
        let toStranger = requests.filter { $0.path == "/stranger" }

        // Verified by code we did not write, each with its own subscription's secret.
        #expect(observed.allSecret.hasPrefix("whsec_"))
        #expect(toAll.allSatisfy { $0.verified && $0.secretIndex == 0 }, "\(toAll)")
        #expect(toFailed.allSatisfy { $0.verified && $0.secretIndex == 1 }, "\(toFailed)")
        #expect(toStranger.count == 2 && toStranger.allSatisfy { !$0.verified }, "the verifier accepted a foreign signature: \(toStranger)")
        // Every run.* event of both runs, once each; nothing else.
        #expect(toAll.count == 6, "\(toAll)")
        #expect(Set(toAll.compactMap(\.eventID)) == Set(runEventIDs))
        for request in toAll + toFailed {
            checkPayload(request, event: eventsByID[request.eventID ?? ""], now: observed.now)
        }
        let created = toAll.first { $0.type == "run.created" && $0.runID == good.runID }?.payload
        #expect(created?["run"]?["version"]?.asInt == 1)
        // SPEC §7: the run without its tasks (its progress instead); no `task` on a run event.
        #expect(created?["run"]?["tasks"] == nil, "a payload must not grow with the run's width")
        #expect(created?["run"]?["progress"]?["queued"]?.asInt == 1)
        #expect(created?["task"] == nil)
        #expect(created?["previous_status"]?.isNull == true)
        #expect(created?["task_id"]?.isNull == true)
        let succeeded = toAll.first { $0.type == "run.succeeded" }?.payload
        #expect(succeeded?["run_id"]?.asString == good.runID)
        #expect(succeeded?["previous_status"]?.asString == "running")
        #expect(succeeded?["error"]?.isNull == true)
        #expect(succeeded?["run"]?["finished_at"]?.asString != nil)
        let runFailed = toAll.first { $0.type == "run.failed" }?.payload
        let runFailedError = runFailed?["error"]
        #expect(runFailed?["run_id"]?.asString == bad.runID)
        #expect(runFailed?["status"]?.asString == "failed")
        #expect(runFailedError?["code"]?.asString == "task_failed")
        #expect(runFailedError?["task_id"]?.asString == bad.taskID)
        #expect(runFailedError?["cause"]?["code"]?.asString == "exit_code")
        #expect(runFailed?["run"]?["error"]?["code"]?.asString == "task_failed")
        // The task.failed subscription gets exactly that event.
        let taskFailed = toFailed.first?.payload
        #expect(toFailed.count == 1, "\(toFailed)")
        #expect(toFailed.first?.type == "task.failed")
        #expect(taskFailed?["task_id"]?.asString == bad.taskID)
        #expect(taskFailed?["run_id"]?.asString == bad.runID)
        #expect(taskFailed?["previous_status"]?.asString == "running")
        #expect(taskFailed?["error"]?["code"]?.asString == "exit_code")
        #expect(taskFailed?["task"]?["id"]?.asString == bad.taskID)
        #expect(taskFailed?["task"]?["status"]?.asString == "failed")
        #expect(taskFailed?["run"]?["tasks"] == nil)
        // The log records one successful attempt per delivery.
        #expect(observed.logs.count == 3)
        for log in observed.logs {
            #expect(!log.isEmpty)
            #expect(log.allSatisfy { $0.deliveryStatus == "succeeded" && $0.attempts.count == 1 }, "\(log)")
            #expect(log.allSatisfy { $0.attempts.first?["status_code"]?.asInt == 204 && $0.attempts.first?["error"]?.isNull == true })
            #expect(log.allSatisfy { ($0.attempts.first?["latency_ms"]?.asInt ?? -1) >= 0 && $0["next_attempt_at"]?.isNull == true })
        }
    }

    /// One request against the event it carries (SPEC §3 payload and headers).
    static func checkPayload(_ request: ReceivedRequest, event: JSONValue?, now: Double) {
        let payload = request.payload
        let type = payload["type"]?.asString ?? ""
        let run = payload["run"]
        #expect(request.webhookID == request.eventID, "webhook-id must equal the payload's event_id")
        #expect(request.webhookSignature?.hasPrefix("v1,") == true)
        #expect(abs((Double(request.webhookTimestamp ?? "") ?? 0) - now) < 60, "webhook-timestamp is not the attempt's Unix seconds")
        #expect(event != nil, "\(type) \(request.eventID ?? "") is not an event of the runs")
        for key in ["seq", "run_seq", "run_id", "task_id", "type", "status", "previous_status", "timestamp", "error"] {
            #expect(payload[key]?.canonical == event?[key]?.canonical, "payload \(key) differs from the event's")
        }
        #expect(payload["workflow_name"]?.asString == "deploy")
        #expect(run?["id"] == payload["run_id"])
        #expect(run?["workflow"]?.asString == "deploy")
        if let expected = runStatusAsOf[type] {
            #expect(run?["status"]?.asString == expected, "\(type) carries the run as \(run?["status"]?.asString ?? "nil")")
        }
    }

    @Test("A run's callback_url receives its run events signed with its callback_secret, given or generated")
    func callbackURLReceivesRunEvents() async throws {
        // The reference verifier is installed first: on a fresh clone that takes longer than
        // the whole retry schedule, which would fail the deliveries before the receiver is up.
        _ = try await ReferenceVerifier.python()
        try await withDeliveryApp(retry: [300, 600, 1000, 2000, 4000, 8000]) { client in
            let port = try freeLoopbackPort()
            let givenSecret = makeWebhookSecret()
            let given = try await client.createRun(
                runBody(tasks: "[\(taskJSON("build"))]", extra: #""callback_url":"http://127.0.0.1:\#(port)/given","callback_secret":"\#(givenSecret)""#))
            let generated = try await client.createRun(
                runBody(tasks: "[\(taskJSON("build"))]", extra: #""callback_url":"http://127.0.0.1:\#(port)/generated""#))
            let generatedSecret = generated["callback_secret"]?.asString ?? ""
            let givenRunID = given["id"]?.asString ?? ""
            let generatedRunID = generated["id"]?.asString ?? ""
            let read = try await client.snapshot(generatedRunID)
            // Started only now: it must know the generated secret. The run.created attempts made
            // before it listened are retried on the schedule.
            let receiver = try await ScriptedReceiver.start(secrets: [givenSecret, generatedSecret], port: port)
            defer { receiver.stop() }
            for _ in 0..<2 {
                let taskID = try await client.claimTaskID()
                try await client.reportOK(taskID, reportBody("running"))
                try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            }
            let requests = try await receiver.waitForRequests(timeout: .seconds(25)) { requests in
                Set(requests.filter { $0.path == "/given" }.compactMap(\.eventID)).count >= 3
                    && Set(requests.filter { $0.path == "/generated" }.compactMap(\.eventID)).count >= 3
            }
            let toGiven = requests.filter { $0.path == "/given" }
            let toGenerated = requests.filter { $0.path == "/generated" }
            let givenRunEvents = try await client.timeline(givenRunID).filter { $0["type"]?.asString?.hasPrefix("run.") == true }
            let generatedRunEvents = try await client.timeline(generatedRunID).filter { $0["type"]?.asString?.hasPrefix("run.") == true }

            #expect(given["callback_secret"] == nil || given["callback_secret"]?.asString == givenSecret)
            #expect(generatedSecret.hasPrefix("whsec_"))
            #expect(read["callback_secret"] == nil)
            #expect(toGiven.allSatisfy { $0.verified && $0.secretIndex == 0 && $0.runID == givenRunID }, "\(toGiven)")
            #expect(toGenerated.allSatisfy { $0.verified && $0.secretIndex == 1 && $0.runID == generatedRunID }, "\(toGenerated)")
            #expect(Set(toGiven.compactMap(\.eventID)) == Set(givenRunEvents.compactMap { $0["id"]?.asString }))
            #expect(Set(toGenerated.compactMap(\.eventID)) == Set(generatedRunEvents.compactMap { $0["id"]?.asString }))
            #expect(Set(toGiven.compactMap(\.type)) == ["run.created", "run.running", "run.succeeded"])
            #expect((toGiven + toGenerated).allSatisfy { $0.webhookID == $0.eventID })
            #expect(!(toGiven + toGenerated).contains { $0.type?.hasPrefix("task.") == true }, "a callback_url got task events")
        }
    }

    @Test("A receiver failing the first attempts with 503 is retried on the schedule with the same webhook-id until it succeeds")
    func retriesUntilDelivered() async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], failFirst: 2)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let log = try await client.waitForDeliveryLog(webhookID) { $0.first?.deliveryStatus == "succeeded" }
            let requests = receiver.requests()
            let eventID = try await client.timeline(runID).first?["id"]?.asString
            let attempts = log.first?.attempts ?? []
            let times = attempts.compactMap { milliseconds($0["at"]?.asString) }

            #expect(requests.map(\.answered) == [503, 503, 204], "\(requests)")
            #expect(requests.allSatisfy { $0.verified })
            #expect(requests.allSatisfy { $0.webhookID == eventID }, "webhook-id changed between retries: \(requests.map(\.webhookID))")
            #expect(log.count == 1)
            #expect(log.first?.deliveryStatus == "succeeded")
            #expect(log.first?["next_attempt_at"]?.isNull == true)
            #expect(attempts.compactMap { $0["status_code"]?.asInt } == [503, 503, 204])
            #expect(attempts.map { $0["error"]?.isNull == false } == [true, true, false], "\(attempts)")
            #expect(attempts.allSatisfy { ($0["latency_ms"]?.asInt ?? -1) >= 0 })
            #expect(times.count == 3)
            if times.count == 3 {
                // 200 ms less 10 % jitter at the least.
                #expect(times[1] - times[0] >= 180, "retried after \(times[1] - times[0]) ms")
                #expect(times[2] - times[1] >= 180, "retried after \(times[2] - times[1]) ms")
            }
        }
    }

    @Test("A receiver that always answers 503 gets the first try plus one per scheduled delay, then the delivery fails")
    func scheduleExhausted() async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], status: 503)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let log = try await client.waitForDeliveryLog(webhookID, timeout: .seconds(15)) { $0.first?.deliveryStatus == "failed" }
            let attempts = log.first?.attempts ?? []
            let times = attempts.compactMap { milliseconds($0["at"]?.asString) }
            try await Task.sleep(for: .milliseconds(1200))  // longer than any delay and a poll of the outbox
            let requests = receiver.requests()
            let snapshot = try await client.snapshot(runID)

            #expect(log.first?.deliveryStatus == "failed")
            #expect(log.first?["next_attempt_at"]?.isNull == true)
            #expect(attempts.count == 4, "\(attempts)")
            #expect(attempts.allSatisfy { $0["status_code"]?.asInt == 503 && $0["error"]?.asString != nil })
            #expect(requests.count == 4, "\(requests)")
            #expect(Set(requests.compactMap(\.webhookID)).count == 1)
            if times.count == 4 {
                #expect(times[1] - times[0] >= 180)
                #expect(times[2] - times[1] >= 180)
                #expect(times[3] - times[2] >= 360)
            }
            #expect(snapshot["status"]?.asString == "queued", "a failed delivery changed the run")
        }
    }

    /// `date:3` is an HTTP date 3 s ahead; it has whole seconds, so it is at least 2 s ahead.
    @Test(
        "Retry-After on a 503 is honoured, as seconds or as an HTTP date: the next attempt waits for it, not for the shorter schedule",
        arguments: [("2", Int64(1990)), ("date:3", 1900)])
    func retryAfterIsHonoured(retryAfter: String, minimumGap: Int64) async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], failFirst: 1, retryAfter: retryAfter)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let log = try await client.waitForDeliveryLog(webhookID) { $0.first?.deliveryStatus == "succeeded" }
            let times = (log.first?.attempts ?? []).compactMap { milliseconds($0["at"]?.asString) }

            #expect(log.first?.deliveryStatus == "succeeded")
            #expect(times.count == 2)
            if times.count == 2 {
                #expect(times[1] - times[0] >= minimumGap, "retried after \(times[1] - times[0]) ms despite Retry-After: \(retryAfter)")
            }
        }
    }

    @Test("A 400 answer fails the delivery at once without a retry, and the run still succeeds")
    func clientErrorFailsAtOnce() async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], status: 400)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url("/sub"), secret: secret)["id"]?.asString ?? ""
            let (runID, _) = try await client.driveOneTaskRun(
                extra: #""callback_url":"\#(receiver.url("/callback"))","callback_secret":"\#(secret)""#)
            let log = try await client.waitForDeliveryLog(webhookID) { log in
                log.count == 3 && log.allSatisfy { $0.deliveryStatus == "failed" }
            }
            _ = try await receiver.waitForRequests { $0.count >= 6 }
            try await Task.sleep(for: .milliseconds(1200))  // longer than any delay and a poll of the outbox
            let requests = receiver.requests()
            let snapshot = try await client.snapshot(runID)
            let types = try await client.timeline(runID).compactMap { $0["type"]?.asString }

            #expect(log.count == 3)
            #expect(log.allSatisfy { $0.deliveryStatus == "failed" && $0["next_attempt_at"]?.isNull == true }, "\(log)")
            #expect(log.allSatisfy { $0.attempts.count == 1 && $0.attempts.first?["status_code"]?.asInt == 400 })
            #expect(log.allSatisfy { $0.attempts.first?["error"]?.asString != nil })
            #expect(requests.count == 6, "retried after a 400: \(requests)")
            #expect(requests.allSatisfy { $0.verified })
            #expect(snapshot["status"]?.asString == "succeeded")
            #expect(snapshot["error"]?.isNull == true)
            #expect(types == ["run.created", "task.dispatched", "run.running", "task.running", "task.succeeded", "run.succeeded"])
        }
    }

    @Test("Network-ish answers are retried: 408, 429, 500 and 502 once, then 204 delivers", arguments: [408, 429, 500, 502])
    func retryableStatusesAreRetried(status: Int) async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], failFirst: 1, failStatus: status)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let log = try await client.waitForDeliveryLog(webhookID) { $0.first?.deliveryStatus == "succeeded" }

            #expect(log.first?.deliveryStatus == "succeeded")
            #expect(log.first?.attempts.compactMap { $0["status_code"]?.asInt } == [status, 204])
            #expect(receiver.requests().map(\.answered) == [status, 204])
        }
    }

    @Test("Other 4xx answers fail at once: 401, 404 and 422 get one attempt and no retry", arguments: [401, 404, 422])
    func otherClientErrorsFailAtOnce(status: Int) async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], failFirst: 1, failStatus: status)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let log = try await client.waitForDeliveryLog(webhookID) { $0.first?.deliveryStatus == "failed" }
            try await Task.sleep(for: .milliseconds(1200))  // longer than any delay and a poll of the outbox

            #expect(log.first?.deliveryStatus == "failed")
            #expect(log.first?.attempts.compactMap { $0["status_code"]?.asInt } == [status])
            #expect(receiver.requests().count == 1)
            #expect(try await waitForWebhookStatus(client, webhookID, "active", timeout: .zero)?["status"]?.asString == "active")
        }
    }

    /// A regression test: an attempt that ended after the delete once re-queued its delivery.
    @Test("A subscription deleted while an attempt to it is in flight gets no more deliveries")
    func deletedDuringAttemptGetsNoRetry() async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let hung = try await ScriptedReceiver.start(secrets: [secret], hang: true)
            defer { hung.stop() }
            let port = hung.port
            let webhookID = try await client.subscribe(url: hung.url(), events: ["run.created"], secret: secret)["id"]?.asString ?? ""
            _ = try await client.createRun(oneTaskRun)
            let inFlight = try await hung.waitForRequests { !$0.isEmpty }  // the attempt now waits for an answer
            let deleted = try await client.send(.delete, "/v1/webhooks/\(webhookID)")
            hung.stop()  // the attempt ends with a network error
            let watcher = try await ScriptedReceiver.start(secrets: [secret], port: port)
            defer { watcher.stop() }
            try await Task.sleep(for: .milliseconds(2500))  // past the 200 ms retry and a poll of the outbox

            #expect(inFlight.count == 1)
            #expect(deleted.status == .noContent)
            #expect(watcher.requests().isEmpty, "a deleted subscription was retried: \(watcher.requests())")
        }
    }

    /// A regression test: the due list is read before each delivery is claimed, so an attempt
    /// that ended in between was once sent again (a 400 got a second attempt).
    @Test("Under load every delivery answered 400 is attempted exactly once")
    func exactlyOneAttemptUnderLoad() async throws {
        try await withDeliveryApp(retry: [200, 200, 400]) { client in
            let secret = makeWebhookSecret()
            let receiver = try await ScriptedReceiver.start(secrets: [secret], status: 400)
            defer { receiver.stop() }
            var ids: [String] = []
            for index in 0..<8 {
                // Run and task events: six per run (`*` would add the runner's own `runner.online`).
                ids.append(try await client.subscribe(url: receiver.url("/s\(index)"), events: ["run.*", "task.*"], secret: secret)["id"]?.asString ?? "")
            }
            for _ in 0..<8 { try await client.driveOneTaskRun() }
            let expected = 8 * 8 * 6
            _ = try await receiver.waitForRequests(timeout: .seconds(20)) { $0.count >= expected }
            var logs: [JSONValue] = []
            for id in ids {
                logs += try await client.waitForDeliveryLog(id) { $0.allSatisfy { $0.deliveryStatus == "failed" } }
            }
            // Proves no second attempt comes: a window longer than any delay and a poll of the
            // outbox, since "nothing more arrives" cannot be polled for.
            try await Task.sleep(for: .milliseconds(1200))
            let requests = receiver.requests()
            let repeated = logs.filter { $0.attempts.count != 1 }

            #expect(logs.count == expected)
            #expect(logs.allSatisfy { $0.deliveryStatus == "failed" })
            #expect(repeated.isEmpty, "\(repeated.count) deliveries had more than one attempt: \(repeated.prefix(2))")
            #expect(requests.count == expected, "\(requests.count - expected) requests too many")
        }
    }

    @Test("410 Gone disables the subscription with a reason and fails its pending deliveries; the run is unaffected")
    func goneDisablesTheSubscription() async throws {
        try await withDeliveryApp(retry: [5000, 5000, 5000]) { client in
            let secret = makeWebhookSecret()
            // The first request is answered 503 (its retry waits 5 s, ample even on a loaded
            // machine for run.running to be delivered first), every later one 410.
            let receiver = try await ScriptedReceiver.start(secrets: [secret], failFirst: 1, status: 410)
            defer { receiver.stop() }
            let webhookID = try await client.subscribe(url: receiver.url(), secret: secret)["id"]?.asString ?? ""
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let pending = try await client.waitForDeliveryLog(webhookID) { $0.first?.attempts.count == 1 }
            #expect(pending.first?.deliveryStatus == "pending", "the 503 must leave run.created pending for a retry")
            let taskID = try await client.claimTaskID()  // run.running → 410
            let disabled = try await waitForWebhookStatus(client, webhookID, "disabled")
            try await client.reportOK(taskID, reportBody("running"))
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let firstAttempt = milliseconds(pending.first?.attempts.first?["at"]?.asString) ?? 0
            let waitUntil = Double(firstAttempt) / 1000 + 5.6  // past the 503's retry time
            let remaining = waitUntil - Date().timeIntervalSince1970
            if remaining > 0 { try await Task.sleep(for: .milliseconds(Int(remaining * 1000))) }
            let log = try await client.deliveryLog(webhookID)
            let requests = receiver.requests()
            let snapshot = try await client.snapshot(runID)

            #expect(disabled?["status"]?.asString == "disabled")
            #expect(disabled?["disabled_reason"]?.asString?.isEmpty == false)
            #expect(log.compactMap { $0["type"]?.asString } == ["run.created", "run.running"], "a disabled subscription got new deliveries")
            #expect(log.allSatisfy { $0.deliveryStatus == "failed" && $0["next_attempt_at"]?.isNull == true }, "\(log)")
            #expect(log.first?.attempts.compactMap { $0["status_code"]?.asInt } == [503], "the pending delivery was retried after 410")
            #expect(log.last?.attempts.compactMap { $0["status_code"]?.asInt } == [410])
            #expect(requests.map(\.answered) == [503, 410], "\(requests)")
            #expect(snapshot["status"]?.asString == "succeeded")
        }
    }

    @Test("A receiver down for a whole run gets every missed event after recover, and a manual retry sends one again")
    func downReceiverRecovers() async throws {
        // No retries: each delivery fails after its first attempt (a refused connection).
        try await withDeliveryApp(retry: []) { client in
            let port = try freeLoopbackPort()  // nothing listens here until the receiver starts
            let secret = makeWebhookSecret()
            let subscription = try await client.subscribe(
                url: "http://127.0.0.1:\(port)/hook", events: ["run.created", "run.succeeded"], secret: secret)
            let webhookID = subscription["id"]?.asString ?? ""
            let since = subscription["created_at"]?.asString ?? ""
            let (runID, _) = try await client.driveOneTaskRun()
            let failed = try await client.waitForDeliveryLog(webhookID, timeout: .seconds(20)) { log in
                log.count == 2 && log.allSatisfy { $0.deliveryStatus == "failed" }
            }
            let snapshot = try await client.snapshot(runID)
            let missedIDs = try await client.timeline(runID)
                .filter { ["run.created", "run.succeeded"].contains($0["type"]?.asString ?? "") }.compactMap { $0["id"]?.asString }

            #expect(failed.count == 2 && failed.allSatisfy { $0.deliveryStatus == "failed" }, "\(failed)")
            #expect(failed.allSatisfy { $0.attempts.count == 1 && $0["next_attempt_at"]?.isNull == true }, "\(failed)")
            #expect(failed.allSatisfy { $0.attempts.first?["status_code"]?.isNull == true && $0.attempts.first?["error"]?.asString != nil })
            #expect(snapshot["status"]?.asString == "succeeded", "a failed delivery changed the run")

            let receiver = try await ScriptedReceiver.start(secrets: [secret], port: port)
            defer { receiver.stop() }
            let recover = try await client.send(.post, "/v1/webhooks/\(webhookID)/recover", json: #"{"since":"\#(since)"}"#)
            let requests = try await receiver.waitForRequests { Set($0.compactMap(\.eventID)).count >= 2 }
            let recovered = try await client.waitForDeliveryLog(webhookID) { $0.allSatisfy { $0.deliveryStatus == "succeeded" } }

            #expect(recover.status == .accepted, "body: \(recover.text)")
            #expect(try recover.json()["requeued"]?.asInt == 2)
            #expect(Set(requests.compactMap(\.eventID)) == Set(missedIDs))
            #expect(requests.allSatisfy { $0.verified && $0.webhookID == $0.eventID })
            #expect(recovered.allSatisfy { $0.deliveryStatus == "succeeded" && $0.attempts.count == 2 }, "\(recovered)")
            #expect(recovered.allSatisfy { $0.attempts.last?["status_code"]?.asInt == 204 })

            // Manual retry: one delivery once more, same webhook-id.
            let again = recovered.first
            let retry = try await client.send(.post, "/v1/deliveries/\(again?["id"]?.asString ?? "")/retry")
            let afterRetry = try await receiver.waitForRequests { $0.count >= requests.count + 1 }
            let retried = try await client.waitForDeliveryLog(webhookID) { log in
                log.first { $0["id"] == again?["id"] }?.attempts.count == 3 && log.allSatisfy { $0.deliveryStatus == "succeeded" }
            }
            let recoverAgain = try await client.send(.post, "/v1/webhooks/\(webhookID)/recover", json: #"{"since":"\#(since)"}"#)

            #expect(retry.status == .accepted, "body: \(retry.text)")
            #expect(afterRetry.count == requests.count + 1)
            #expect(afterRetry.last?.webhookID == again?["event_id"]?.asString)
            #expect(afterRetry.last?.verified == true)
            #expect(retried.first { $0["id"] == again?["id"] }?.attempts.count == 3)
            #expect(try recoverAgain.json()["requeued"]?.asInt == 0, "recover re-queued deliveries that had succeeded")
        }
    }

    @Test("A receiver down during a run and back within the retry schedule gets every event without any manual step")
    func downReceiverCaughtUpByRetries() async throws {
        _ = try await ReferenceVerifier.python()  // installed before the schedule starts to run, as above
        try await withDeliveryApp(retry: [500, 1000, 2000, 4000, 8000]) { client in
            let port = try freeLoopbackPort()
            let secret = makeWebhookSecret()
            let webhookID = try await client.subscribe(url: "http://127.0.0.1:\(port)/hook", secret: secret)["id"]?.asString ?? ""
            let (runID, _) = try await client.driveOneTaskRun()
            // The first delivery has failed (refused) and waits for its retry.
            let refused = try await client.waitForDeliveryLog(webhookID, timeout: .seconds(15)) { $0.first?.attempts.isEmpty == false }
            let receiver = try await ScriptedReceiver.start(secrets: [secret], port: port)
            defer { receiver.stop() }
            let log = try await client.waitForDeliveryLog(webhookID, timeout: .seconds(25)) { log in
                log.count == 3 && log.allSatisfy { $0.deliveryStatus == "succeeded" }
            }
            let requests = receiver.requests()
            let runEventIDs = try await client.timeline(runID).filter { $0["type"]?.asString?.hasPrefix("run.") == true }
                .compactMap { $0["id"]?.asString }

            #expect(refused.first?.attempts.first?["error"]?.asString != nil, "\(refused)")
            #expect(refused.first?.deliveryStatus == "pending")
            #expect(log.count == 3 && log.allSatisfy { $0.deliveryStatus == "succeeded" }, "\(log)")
            #expect((log.first?.attempts.count ?? 0) >= 2, "the refused delivery was not retried: \(log)")
            #expect(log.allSatisfy { $0.attempts.last?["status_code"]?.asInt == 204 })
            #expect(Set(requests.compactMap(\.eventID)) == Set(runEventIDs))
            #expect(requests.allSatisfy { $0.verified })
        }
    }

    @Test("A receiver that never answers does not hold up deliveries to a healthy receiver")
    func hangingReceiverDoesNotBlockOthers() async throws {
        try await withDeliveryApp { client in
            let hungSecret = makeWebhookSecret()
            let healthySecret = makeWebhookSecret()
            let hung = try await ScriptedReceiver.start(secrets: [hungSecret], hang: true)
            defer { hung.stop() }
            let healthy = try await ScriptedReceiver.start(secrets: [healthySecret])
            defer { healthy.stop() }
            // Run and task events: six per run, more than the deliveries one URL may keep in flight.
            let patterns = ["run.*", "task.*"]
            let hungID = try await client.subscribe(url: hung.url(), events: patterns, secret: hungSecret)["id"]?.asString ?? ""
            let healthyID = try await client.subscribe(url: healthy.url(), events: patterns, secret: healthySecret)["id"]?.asString ?? ""
            let started = ContinuousClock.now
            let first = try await client.driveOneTaskRun()
            let second = try await client.driveOneTaskRun(succeed: false)
            let received = try await healthy.waitForRequests(timeout: .seconds(10)) { Set($0.compactMap(\.eventID)).count >= 12 }
            let elapsed = seconds(since: started)
            let hanging = hung.requests()
            let hungLog = try await client.deliveryLog(hungID)
            let healthyLog = try await client.waitForDeliveryLog(healthyID) { $0.allSatisfy { $0.deliveryStatus == "succeeded" } }
            hung.stop()  // lets its attempts end, so the app shuts down at once

            #expect(Set(received.compactMap(\.runID)) == [first.runID, second.runID])
            #expect(Set(received.compactMap(\.eventID)).count == 12, "\(received)")
            #expect(elapsed < 10, "the healthy receiver waited \(elapsed) s (a hung attempt lasts 15 s)")
            #expect(received.allSatisfy { $0.verified })
            #expect(!hanging.isEmpty, "the hanging receiver was never tried")
            #expect(hanging.allSatisfy { $0.answered == nil })
            #expect(hungLog.count == 12)
            #expect(hungLog.allSatisfy { $0.deliveryStatus == "pending" && $0.attempts.isEmpty }, "\(hungLog)")
            #expect(healthyLog.count == 12 && healthyLog.allSatisfy { $0.deliveryStatus == "succeeded" })
        }
    }

    @Test("The outbox survives a restart: events recorded with the dispatcher off are delivered by the next server")
    func outboxSurvivesRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let port = try freeLoopbackPort()
        let secret = makeWebhookSecret()
        let (webhookID, runID, runEventIDs, pending) = try await withApp(database: directory.databasePath) { client in
            let webhookID = try await client.subscribe(url: "http://127.0.0.1:\(port)/hook", secret: secret)["id"]?.asString ?? ""
            let (runID, _) = try await client.driveOneTaskRun()
            let runEventIDs = try await client.timeline(runID).filter { $0["type"]?.asString?.hasPrefix("run.") == true }
                .compactMap { $0["id"]?.asString }
            return (webhookID, runID, runEventIDs, try await client.deliveryLog(webhookID))
        }
        #expect(pending.count == 3 && pending.allSatisfy { $0.deliveryStatus == "pending" && $0.attempts.isEmpty }, "\(pending)")

        let receiver = try await ScriptedReceiver.start(secrets: [secret], port: port)
        defer { receiver.stop() }
        let (requests, log) = try await withDeliveryApp(database: directory.databasePath) { client in
            let requests = try await receiver.waitForRequests { Set($0.compactMap(\.eventID)).count >= 3 }
            let log = try await client.waitForDeliveryLog(webhookID) { $0.allSatisfy { $0.deliveryStatus == "succeeded" } }
            return (requests, log)
        }

        #expect(Set(requests.compactMap(\.eventID)) == Set(runEventIDs))
        #expect(requests.allSatisfy { $0.verified && $0.runID == runID && $0.webhookID == $0.eventID })
        // As of the event, not as of delivery (which happened after the run had ended).
        #expect(requests.first { $0.type == "run.created" }?.payload["run"]?["status"]?.asString == "queued")
        #expect(requests.first { $0.type == "run.running" }?.payload["run"]?["status"]?.asString == "running")
        #expect(log.count == 3 && log.allSatisfy { $0.deliveryStatus == "succeeded" && $0.attempts.count == 1 }, "\(log)")
    }
}

/// Polls `GET /v1/webhooks` until the subscription has `status`; the item (or nil) when 10 s pass.
func waitForWebhookStatus(
    _ client: any TestClientProtocol, _ webhookID: String, _ status: String, timeout: Duration = .seconds(10)
) async throws -> JSONValue? {
    let deadline = ContinuousClock.now + timeout
    while true {
        let item = try await client.getJSON("/v1/webhooks?limit=500")["items"]?.asArray?.first { $0["id"]?.asString == webhookID }
        if item?["status"]?.asString == status || ContinuousClock.now > deadline { return item }
        try await Task.sleep(for: .milliseconds(50))
    }
}
