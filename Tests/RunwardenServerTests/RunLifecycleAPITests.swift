import Foundation
import HummingbirdTesting
import RunwardenCore
import Testing

/// A run's whole life over the HTTP API (SPEC §1 and §2): create, claim, report, cancel.
@Suite("Run lifecycle over the API")
struct RunLifecycleAPITests {
    @Test("POST /v1/runs answers 202 with a Location header and a queued version-1 snapshot")
    func createAnswersAcceptedWithLocation() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runs", json: oneTaskRun)
            let snapshot = try response.json()
            let id = snapshot["id"]?.asString ?? ""

            #expect(response.status == .accepted)
            #expect(id.hasPrefix("run_"))
            #expect(response.headers[.location] == "/v1/runs/\(id)")
            #expect(snapshot["version"]?.asInt == 1)
            #expect(snapshot["status"]?.asString == "queued")
            #expect(snapshot["workflow"]?.asString == "deploy")
            #expect(snapshot["links"]?["self"]?.asString == "/v1/runs/\(id)")
            #expect(snapshot.task(named: "build")?["status"]?.asString == "queued")
        }
    }

    @Test("A new run has exactly one event, run.created")
    func newRunHasOnlyTheCreatedEvent() async throws {
        try await withApp { client in
            let id = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let page = try await client.getJSON("/v1/runs/\(id)/events")
            let event = page["events"]?.asArray?.first

            #expect(page.eventTypes == ["run.created"])
            #expect(event?["run_seq"]?.asInt == 1)
            #expect(event?["status"]?.asString == "queued")
            #expect(event?["task_id"]?.isNull == true)
        }
    }

    @Test("GET /v1/runs/{id} answers the same snapshot the create answered")
    func getAnswersTheCreatedSnapshot() async throws {
        try await withApp { client in
            let created = try await client.createRun(oneTaskRun)
            let fetched = try await client.snapshot(created["id"]?.asString ?? "")

            #expect(fetched.canonical == created.canonical)
        }
    }

    @Test("A claim hands out the task with lease_s, makes it dispatched and the run running")
    func claimDispatchesTheTask() async throws {
        try await withApp { client in
            let runID = try await client.createRun(
                runBody(tasks: "[\(taskJSON("build", extra: #""env":{"CI":"1"},"timeout_s":60,"workspace":"repo-a""#))]")
            )["id"]?.asString ?? ""
            let response = try await client.send(.post, "/v1/runners/host-a/claim", json: #"{"labels":[]}"#)
            let answer = try response.json()
            let task = answer["task"]
            let snapshot = try await client.snapshot(runID)

            #expect(response.status == .ok)
            #expect(answer["lease_s"]?.asInt == 30)
            #expect(task?["run_id"]?.asString == runID)
            #expect(task?["name"]?.asString == "build")
            #expect(task?["command"] == .array([.string("make"), .string("build")]))
            #expect(task?["env"]?["CI"]?.asString == "1")
            #expect(task?["workspace"]?.asString == "repo-a")
            #expect(task?["timeout_s"]?.asInt == 60)
            #expect(task?["attempt"]?.asInt == 1)
            #expect(snapshot["status"]?.asString == "running")
            #expect(snapshot.task(named: "build")?["status"]?.asString == "dispatched")
            #expect(snapshot.task(named: "build")?["runner"]?.asString == "host-a")
        }
    }

    @Test("A shell-string command is handed out as /bin/sh -c")
    func shellStringIsHandedOutThroughSh() async throws {
        try await withApp { client in
            _ = try await client.createRun(runBody(tasks: #"[{"name":"test","command":"make test && echo ok"}]"#))
            let answer = try await client.claim()

            #expect(answer?["task"]?["command"] == .array([.string("/bin/sh"), .string("-c"), .string("make test && echo ok")]))
        }
    }

    @Test("Reports running then succeeded make the run succeeded with full progress and the runner named")
    func reportsDriveTheRunToSucceeded() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            let running = try await client.reportOK(taskID, reportBody("running"))
            let succeeded = try await client.reportOK(
                taskID, reportBody("succeeded", #""exit_code":0,"output_ref":"s3://bucket/build/42""#))
            let snapshot = try await client.snapshot(runID)
            let task = snapshot.task(named: "build")
            let progress = snapshot["progress"]

            #expect(running["applied"]?.asBool == true)
            #expect(succeeded["applied"]?.asBool == true)
            #expect(succeeded["task"]?["status"]?.asString == "succeeded")
            #expect(snapshot["status"]?.asString == "succeeded")
            #expect(progress?["total"]?.asInt == 1)
            #expect(progress?["succeeded"]?.asInt == 1)
            #expect(progress?["running"]?.asInt == 0)
            #expect(progress?["percent"]?.asInt == 100)
            #expect(task?["runner"]?.asString == "host-a")
            #expect(task?["exit_code"]?.asInt == 0)
            #expect(task?["started_at"]?.asString != nil)
            #expect(task?["finished_at"]?.asString != nil)
            #expect(snapshot["finished_at"]?.asString != nil)
            #expect(snapshot["duration_ms"]?.asInt != nil)
            #expect(snapshot["output_ref"]?.asString == "s3://bucket/build/42")
            #expect(snapshot["error"]?.isNull == true)
        }
    }

    @Test("The timeline of a successful run is created, dispatched, running, succeeded in order")
    func successfulRunTimeline() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let page = try await client.getJSON("/v1/runs/\(runID)/events")

            #expect(
                page.eventTypes == [
                    "run.created", "task.dispatched", "run.running", "task.running", "task.succeeded", "run.succeeded",
                ])
        }
    }

    @Test("A failing task fails the run with task_failed naming the task and its cause")
    func failingTaskFailsTheRun() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            try await client.reportOK(taskID, reportBody("failed", #""exit_code":2"#))
            let snapshot = try await client.snapshot(runID)
            let error = snapshot["error"]

            #expect(snapshot["status"]?.asString == "failed")
            #expect(error?["code"]?.asString == "task_failed")
            #expect(error?["task_id"]?.asString == taskID)
            #expect(error?["cause"]?["code"]?.asString == "exit_code")
            #expect(error?["retryable"]?.asBool == false)
            #expect(snapshot.task(named: "build")?["exit_code"]?.asInt == 2)
            #expect(snapshot["progress"]?["failed"]?.asInt == 1)
        }
    }

    @Test("A failing task skips the tasks that still wait on it")
    func failingTaskSkipsWaitingTasks() async throws {
        try await withApp { client in
            let runID = try await client.createRun(
                runBody(tasks: "[\(taskJSON("build")),\(taskJSON("test", extra: #""needs":["build"]"#))]"))["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("failed", #""exit_code":1"#))
            let snapshot = try await client.snapshot(runID)

            #expect(snapshot["status"]?.asString == "failed")
            #expect(snapshot.task(named: "test")?["status"]?.asString == "skipped")
            #expect(snapshot["progress"]?["percent"]?.asInt == 100)
        }
    }

    @Test("Cancel of a run with nothing dispatched answers 202 and the run is canceled")
    func cancelOfQueuedRunIsImmediate() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let response = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let snapshot = try response.json()

            #expect(response.status == .accepted)
            #expect(snapshot["status"]?.asString == "canceled")
            #expect(snapshot.task(named: "build")?["status"]?.asString == "canceled")
            #expect(snapshot["finished_at"]?.asString != nil)
        }
    }

    @Test("Cancel of a terminal run answers 409 run_terminal and changes nothing")
    func cancelOfTerminalRunIsRefused() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            _ = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let before = try await client.snapshot(runID)
            let response = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let after = try await client.snapshot(runID)

            try expectError(response, .conflict, "run_terminal")
            #expect(after.canonical == before.canonical)
        }
    }

    @Test("Cancel while a task runs makes the run canceling and the task canceling")
    func cancelWhileRunningIsCanceling() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            let response = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let snapshot = try response.json()

            #expect(response.status == .accepted)
            #expect(snapshot["status"]?.asString == "canceling")
            #expect(snapshot.task(named: "build")?["status"]?.asString == "canceling")
        }
    }

    @Test("A heartbeat lists the canceling task in cancel")
    func heartbeatNamesTheCancelingTask() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            _ = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let response = try await client.send(.post, "/v1/runners/host-a/heartbeat", json: #"{"tasks":["\#(taskID)"]}"#)
            let answer = try response.json()

            #expect(response.status == .ok)
            #expect(answer["cancel"] == .array([.string(taskID)]))
            #expect(answer["lease_s"]?.asInt == 30)
        }
    }

    @Test("The runner's canceled report ends a canceling run canceled")
    func canceledReportEndsCancelingRun() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("running"))
            _ = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let answer = try await client.reportOK(taskID, reportBody("canceled"))
            let snapshot = try await client.snapshot(runID)

            #expect(answer["applied"]?.asBool == true)
            #expect(snapshot["status"]?.asString == "canceled")
            #expect(snapshot.task(named: "build")?["status"]?.asString == "canceled")
            #expect(snapshot["progress"]?["percent"]?.asInt == 100)
        }
    }

    @Test("A second cancel while canceling answers 202 and steps no version")
    func secondCancelWhileCancelingIsAccepted() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            _ = try await client.claimTaskID()
            let first = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let second = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let firstVersion = try first.json()["version"]?.asInt
            let secondSnapshot = try second.json()

            #expect(second.status == .accepted)
            #expect(secondSnapshot["status"]?.asString == "canceling")
            #expect(secondSnapshot["version"]?.asInt == firstVersion)
        }
    }

    @Test("A succeeded report while canceling still ends the run canceled")
    func userCancelIsAuthoritative() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            _ = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let snapshot = try await client.snapshot(runID)

            #expect(snapshot["status"]?.asString == "canceled")
        }
    }

    @Test("Each committed change steps the version exactly once")
    func versionStepsOncePerChange() async throws {
        try await withApp { client in
            let created = try await client.createRun(oneTaskRun)
            let runID = created["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            let afterClaim = try await client.snapshot(runID)["version"]?.asInt
            try await client.reportOK(taskID, reportBody("running"))
            let afterRunning = try await client.snapshot(runID)["version"]?.asInt
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let afterSucceeded = try await client.snapshot(runID)["version"]?.asInt

            #expect([created["version"]?.asInt, afterClaim, afterRunning, afterSucceeded] == [1, 2, 3, 4])
        }
    }

    @Test("percent counts terminal tasks and rounds down")
    func percentRoundsDown() async throws {
        try await withApp { client in
            let runID = try await client.createRun(
                runBody(tasks: "[\(taskJSON("a")),\(taskJSON("b")),\(taskJSON("c"))]"))["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let progress = try await client.snapshot(runID)["progress"]

            #expect(progress?["percent"]?.asInt == 33)
            #expect(progress?["total"]?.asInt == 3)
            #expect(progress?["succeeded"]?.asInt == 1)
            #expect(progress?["queued"]?.asInt == 2)
        }
    }

    @Test("A task allowed to fail neither fails the run nor blocks the tasks that need it")
    func allowFailureDoesNotFailTheRun() async throws {
        try await withApp { client in
            let runID = try await client.createRun(
                runBody(tasks: "[\(taskJSON("lint", extra: #""allow_failure":true"#)),\(taskJSON("test", extra: #""needs":["lint"]"#))]")
            )["id"]?.asString ?? ""
            let lint = try await client.claimTaskID()
            try await client.reportOK(lint, reportBody("failed", #""exit_code":1"#))
            let test = try await client.claimTaskID()
            try await client.reportOK(test, reportBody("succeeded", #""exit_code":0"#))
            let snapshot = try await client.snapshot(runID)

            #expect(snapshot["status"]?.asString == "succeeded")
            #expect(snapshot.task(named: "lint")?["status"]?.asString == "failed")
            #expect(snapshot["error"]?.isNull == true)
        }
    }

    @Test("A failing task makes a sibling still running canceling, and the heartbeat tells its runner to stop")
    func failureStopsRunningSiblings() async throws {
        try await withApp { client in
            let runID = try await client.createRun(runBody(tasks: "[\(taskJSON("a")),\(taskJSON("b"))]"))["id"]?.asString ?? ""
            let first = try await client.claimTaskID(runner: "host-a")
            let second = try await client.claimTaskID(runner: "host-b")
            try await client.reportOK(first, reportBody("failed", #""exit_code":1"#))
            let snapshot = try await client.snapshot(runID)
            let heartbeat = try await client.send(.post, "/v1/runners/host-b/heartbeat", json: #"{"tasks":["\#(second)"]}"#).json()

            #expect(snapshot["status"]?.asString == "failed")
            #expect(snapshot["tasks"]?.asArray?.first { $0["id"]?.asString == second }?["status"]?.asString == "canceling")
            #expect(heartbeat["cancel"] == .array([.string(second)]))
        }
    }

    @Test("A sane report timestamp becomes the task's started_at and the event's timestamp")
    func saneReportTimestampIsUsed() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            let reported = Timestamp(Date()).iso8601
            // Only so the server's clock is a few milliseconds past `reported` (timestamps have
            // millisecond resolution): then which of the two was used can be told apart.
            try await Task.sleep(for: .milliseconds(5))
            try await client.reportOK(taskID, reportBody("running", #""timestamp":"\#(reported)""#))
            let task = try await client.snapshot(runID).task(named: "build")
            let event = try await client.getJSON("/v1/runs/\(runID)/events")["events"]?.asArray?.first {
                $0["type"]?.asString == "task.running"
            }

            #expect(task?["started_at"]?.asString == reported)
            #expect(event?["timestamp"]?.asString == reported)
        }
    }

    @Test(
        "A report timestamp before the claim or in the future is replaced by the server's clock",
        arguments: ["2000-01-01T00:00:00.000Z", "2999-01-01T00:00:00.000Z"])
    func insaneReportTimestampIsReplaced(reported: String) async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            let before = Timestamp(Date())
            try await client.reportOK(taskID, reportBody("running", #""timestamp":"\#(reported)""#))
            let after = Timestamp(Date())
            let startedAt = try await client.snapshot(runID).task(named: "build")?["started_at"]?.asString
                .flatMap(Timestamp.init(iso8601:))

            #expect(startedAt != nil)
            #expect(startedAt.map { $0 >= before && $0 <= after } == true, "started_at \(String(describing: startedAt))")
        }
    }

    @Test("A workspace lock is released when the canceled task's runner confirms the cancel")
    func cancelReleasesLockOnConfirmation() async throws {
        try await withApp { client in
            let runID = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]"))[
                "id"]?.asString ?? ""
            let taskID = try await client.claimTaskID()
            _ = try await client.send(.post, "/v1/runs/\(runID)/cancel")
            let locksWhileCanceling = try await client.getJSON("/v1/locks")["items"]?.asArray?.count
            try await client.reportOK(taskID, reportBody("canceled"))
            let locksAfter = try await client.getJSON("/v1/locks")["items"]?.asArray?.count

            #expect(locksWhileCanceling == 1)
            #expect(locksAfter == 0)
        }
    }

    @Test("GET /v1/tasks/{id} answers the task with its run_id")
    func taskEndpointNamesItsRun() async throws {
        try await withApp { client in
            let created = try await client.createRun(oneTaskRun)
            let taskID = created.task(named: "build")?["id"]?.asString ?? ""
            let task = try await client.getJSON("/v1/tasks/\(taskID)")

            #expect(task["id"]?.asString == taskID)
            #expect(task["run_id"] == created["id"])
            #expect(task["name"]?.asString == "build")
            #expect(task["status"]?.asString == "queued")
        }
    }

    @Test("A pending task says which needs block it, and is queued once they succeed")
    func needsBlockUntilMet() async throws {
        try await withApp { client in
            let runID = try await client.createRun(
                runBody(tasks: "[\(taskJSON("build")),\(taskJSON("test", extra: #""needs":["build"]"#))]"))["id"]?.asString ?? ""
            let before = try await client.snapshot(runID)
            let buildID = try await client.claimTaskID()
            try await client.reportOK(buildID, reportBody("succeeded", #""exit_code":0"#))
            let after = try await client.snapshot(runID)

            #expect(before.task(named: "test")?["status"]?.asString == "pending")
            #expect(before.task(named: "test")?["blocked_by"] == .object(["needs": .array([.string("build")])]))
            #expect(after.task(named: "test")?["status"]?.asString == "queued")
            #expect(after.task(named: "test")?["blocked_by"]?.isNull == true)
            #expect(after["progress"]?["percent"]?.asInt == 50)
        }
    }
}
