import Foundation
import HummingbirdTesting
import RunwardenCore
import RunwardenStoreSQLite
import Testing

/// Claims: what a runner may be handed (SPEC §2 "Runner protocol", §1 workspace locks).
@Suite("Claims over the API")
struct ClaimAPITests {
    @Test("A claim with nothing to do answers 204")
    func claimWithNothingAnswersNoContent() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runners/host-a/claim", json: #"{"labels":[]}"#)

            #expect(response.status == .noContent)
            #expect(response.body.readableBytes == 0)
        }
    }

    @Test("A claim without a body is a claim without labels")
    func claimWithoutBody() async throws {
        try await withApp { client in
            _ = try await client.createRun(oneTaskRun)
            let response = try await client.send(.post, "/v1/runners/host-a/claim")

            #expect(response.status == .ok)
        }
    }

    @Test("A claim repeated with the same claim_id after a lost answer gets the same task, with no new event")
    func claimRepeatedWithClaimID() async throws {
        try await withApp { client in
            let run = try await client.createRun(runBody(tasks: "[\(taskJSON("a")),\(taskJSON("b"))]"))
            let runID = run["id"]?.asString ?? ""
            let body = #"{"labels":[],"claim_id":"claim-7f3a"}"#
            let first = try await client.send(.post, "/v1/runners/host-a/claim", json: body)
            let afterFirst = (version: try await client.snapshot(runID)["version"], events: try await client.timeline(runID).count)
            let again = try await client.send(.post, "/v1/runners/host-a/claim", json: body)
            let afterAgain = (version: try await client.snapshot(runID)["version"], events: try await client.timeline(runID).count)
            let fresh = try await client.send(.post, "/v1/runners/host-a/claim", json: #"{"claim_id":"claim-80b1"}"#)

            #expect(first.status == .ok)
            #expect(again.status == .ok)
            #expect(try first.json()["task"]?["name"]?.asString == "a")
            #expect(try again.json()["task"] == first.json()["task"])
            #expect(afterAgain.version == afterFirst.version)
            #expect(afterAgain.events == afterFirst.events)
            #expect(try fresh.json()["task"]?["name"]?.asString == "b")
        }
    }

    @Test("A claim_id that is not a short plain string is a validation error", arguments: [#"{"claim_id":""}"#, #"{"claim_id":7}"#, #"{"claim_id":"a b"}"#])
    func badClaimID(body: String) async throws {
        try await withApp { client in
            _ = try await client.createRun(oneTaskRun)
            let response = try await client.send(.post, "/v1/runners/host-a/claim", json: body)

            #expect(response.status == .unprocessableContent)
            #expect(try response.errorCode() == "validation_failed")
            #expect(try await client.claim() != nil, "the bad claim took the task")
        }
    }

    @Test("A runner lacking one of the task's labels is not handed the task")
    func claimRespectsLabels() async throws {
        try await withApp { client in
            _ = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""labels":["linux","gpu"]"#))]"))
            let without = try await client.claim(runner: "host-a", labels: ["linux"])
            let with = try await client.claim(runner: "host-b", labels: ["gpu", "linux", "arm"])

            #expect(without == nil)
            #expect(with?["task"]?["name"]?.asString == "build")
            #expect(with?["task"]?["labels"] == .array([.string("linux"), .string("gpu")]))
        }
    }

    @Test("A pending task is not handed out until its needs succeed")
    func claimSkipsPendingTasks() async throws {
        try await withApp { client in
            _ = try await client.createRun(runBody(tasks: "[\(taskJSON("build")),\(taskJSON("test", extra: #""needs":["build"]"#))]"))
            let first = try await client.claimTaskID()
            let whileBuilding = try await client.claim()
            try await client.reportOK(first, reportBody("succeeded", #""exit_code":0"#))
            let afterBuild = try await client.claim()

            #expect(whileBuilding == nil)
            #expect(afterBuild?["task"]?["name"]?.asString == "test")
        }
    }

    @Test("A second task on a held workspace is not claimable while the first holds the lock")
    func workspaceLockBlocksTheSecondTask() async throws {
        try await withApp { client in
            let body = runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]")
            _ = try await client.createRun(body)
            _ = try await client.createRun(body)
            let first = try await client.claim()
            let second = try await client.claim(runner: "host-b")

            #expect(first != nil)
            #expect(second == nil)
        }
    }

    @Test("A queued task on a held workspace says who holds it in blocked_by")
    func blockedByNamesTheLockHolder() async throws {
        try await withApp { client in
            let body = runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]")
            let runA = try await client.createRun(body)["id"]?.asString ?? ""
            let runB = try await client.createRun(body)["id"]?.asString ?? ""
            let holder = try await client.claim()?["task"]
            let waitingRun = holder?["run_id"]?.asString == runA ? runB : runA
            let waiting = try await client.snapshot(waitingRun).task(named: "build")

            #expect(waiting?["status"]?.asString == "queued")
            #expect(
                waiting?["blocked_by"]?.canonical
                    == JSONValue.object(["held_by": holder?["id"] ?? .null, "workspace": .string("repo-a")]))
        }
    }

    @Test("The lock is released when the holding task ends, and the next task becomes claimable")
    func lockReleasedWhenHolderEnds() async throws {
        try await withApp { client in
            let body = runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]")
            _ = try await client.createRun(body)
            _ = try await client.createRun(body)
            let first = try await client.claimTaskID()
            try await client.reportOK(first, reportBody("succeeded", #""exit_code":0"#))
            let locks = try await client.getJSON("/v1/locks")
            let second = try await client.claim(runner: "host-b")

            #expect(locks["items"]?.asArray?.isEmpty == true)
            #expect(second?["task"]?["id"] != nil)
            #expect(second?["task"]?["id"]?.asString != first)
        }
    }

    @Test("GET /v1/locks lists a held lock with workspace, task_id, run_id, runner and acquired_at")
    func locksListTheHeldLock() async throws {
        try await withApp { client in
            let runID = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]"))[
                "id"]?.asString
            let taskID = try await client.claimTaskID(runner: "host-a")
            let locks = try await client.getJSON("/v1/locks")
            let items = locks["items"]?.asArray ?? []
            let lock = items.first
            let keys = Set(lock?.objectMembers?.map(\.key) ?? [])

            #expect(items.count == 1)
            #expect(keys == ["workspace", "task_id", "run_id", "runner", "acquired_at"])
            #expect(lock?["workspace"]?.asString == "repo-a")
            #expect(lock?["task_id"]?.asString == taskID)
            #expect(lock?["run_id"]?.asString == runID)
            #expect(lock?["runner"]?.asString == "host-a")
            #expect(lock?["acquired_at"]?.asString.flatMap(Timestamp.init(iso8601:)) != nil)
            #expect(locks["next_cursor"]?.isNull == true)
        }
    }

    @Test("DELETE /v1/locks/{workspace} answers 204 and frees the workspace for the next task")
    func manualReleaseFreesTheWorkspace() async throws {
        try await withApp { client in
            let body = runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]")
            _ = try await client.createRun(body)
            _ = try await client.createRun(body)
            _ = try await client.claimTaskID()
            let release = try await client.send(.delete, "/v1/locks/repo-a")
            let locksAfterRelease = try await client.getJSON("/v1/locks")
            let second = try await client.claim(runner: "host-b")

            #expect(release.status == .noContent)
            #expect(locksAfterRelease["items"]?.asArray?.isEmpty == true)
            #expect(second?["task"]?["workspace"]?.asString == "repo-a")
        }
    }

    @Test("A manual lock release steps no version of the holding run")
    func manualReleaseStepsNoVersion() async throws {
        try await withApp { client in
            let runID = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]"))[
                "id"]?.asString ?? ""
            _ = try await client.claimTaskID()
            let before = try await client.snapshot(runID)
            _ = try await client.send(.delete, "/v1/locks/repo-a")
            let after = try await client.snapshot(runID)

            #expect(after["version"] == before["version"])
            #expect(after.task(named: "build")?["status"]?.asString == "dispatched")
        }
    }

    @Test("DELETE /v1/locks/{workspace} percent-decodes the name it is given")
    func manualReleaseOfEncodedWorkspaceName() async throws {
        try await withApp { client in
            _ = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""workspace":"repo-a""#))]"))
            _ = try await client.claimTaskID()
            let release = try await client.send(.delete, "/v1/locks/repo%2Da")
            let locks = try await client.getJSON("/v1/locks")

            #expect(release.status == .noContent)
            #expect(locks["items"]?.asArray?.isEmpty == true)
        }
    }

    @Test("DELETE of a free workspace answers 404 lock_not_found")
    func releasingAFreeWorkspaceIsNotFound() async throws {
        try await withApp { client in
            let response = try await client.send(.delete, "/v1/locks/repo-a")

            try expectError(response, .notFound, "lock_not_found")
        }
    }

    @Test("A runner is handed the oldest claimable task first")
    func claimHandsOutOldestFirst() async throws {
        try await withApp { client in
            let older = try await client.createRun(runBody(workflow: "older", tasks: "[\(taskJSON("build"))]"))
            // Ids and queue times have millisecond resolution: keep the two runs in distinct milliseconds.
            try await Task.sleep(for: .milliseconds(3))
            _ = try await client.createRun(runBody(workflow: "newer", tasks: "[\(taskJSON("build"))]"))
            let claimed = try await client.claim()

            #expect(claimed?["task"]?["run_id"] == older["id"])
        }
    }

    @Test("Runner names with characters outside letters, digits, '.', '_' and '-' are refused with 422")
    func badRunnerNameIsRefused() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runners/host%20a/claim", json: #"{"labels":[]}"#)

            try expectError(response, .unprocessableContent, "validation_failed")
        }
    }

    @Test("Claim labels that are not strings are refused with 422 naming the field")
    func claimLabelsMustBeStrings() async throws {
        try await withApp { client in
            let response = try await client.send(.post, "/v1/runners/host-a/claim", json: #"{"labels":[1]}"#)
            let fields = try response.errorObject()?["details"]?.asArray?.compactMap { $0["field"]?.asString } ?? []

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(fields.contains { $0.hasPrefix("labels") })
        }
    }
}

/// Status reports and heartbeats (SPEC §2 "Runner protocol", "Details that clients rely on").
@Suite("Status reports and heartbeats over the API")
struct ReportAPITests {
    /// Creates a one-task run and claims its task as host-a.
    private func claimedTask(_ client: any TestClientProtocol) async throws -> (runID: String, taskID: String) {
        let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
        let taskID = try await client.claimTaskID(runner: "host-a")
        return (runID, taskID)
    }

    @Test("A duplicate report answers 200 applied:false and leaves the version alone")
    func duplicateReportIsNotApplied() async throws {
        try await withApp { client in
            let (runID, taskID) = try await claimedTask(client)
            let first = try await client.reportOK(taskID, reportBody("running"))
            let versionAfterFirst = try await client.snapshot(runID)["version"]
            let duplicate = try await client.report(taskID, reportBody("running"))
            let duplicateAnswer = try duplicate.json()
            let versionAfterDuplicate = try await client.snapshot(runID)["version"]

            #expect(first["applied"]?.asBool == true)
            #expect(duplicate.status == .ok)
            #expect(duplicateAnswer["applied"]?.asBool == false)
            #expect(duplicateAnswer["task"]?["status"]?.asString == "running")
            #expect(versionAfterDuplicate == versionAfterFirst)
        }
    }

    @Test("A late report for a terminal task answers applied:false and moves nothing")
    func lateReportAfterTerminal() async throws {
        try await withApp { client in
            let (runID, taskID) = try await claimedTask(client)
            try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let late = try await client.reportOK(taskID, reportBody("failed", #""exit_code":1"#))
            let snapshot = try await client.snapshot(runID)

            #expect(late["applied"]?.asBool == false)
            #expect(snapshot["status"]?.asString == "succeeded")
            #expect(snapshot.task(named: "build")?["status"]?.asString == "succeeded")
        }
    }

    @Test("A succeeded report before running is applied and fills started_at")
    func outOfOrderReportFillsSkippedState() async throws {
        try await withApp { client in
            let (runID, taskID) = try await claimedTask(client)
            let answer = try await client.reportOK(taskID, reportBody("succeeded", #""exit_code":0"#))
            let lateRunning = try await client.reportOK(taskID, reportBody("running"))
            let task = try await client.snapshot(runID).task(named: "build")

            #expect(answer["applied"]?.asBool == true)
            #expect(lateRunning["applied"]?.asBool == false)
            #expect(task?["status"]?.asString == "succeeded")
            #expect(task?["started_at"]?.asString != nil)
        }
    }

    @Test("A report for an older attempt answers applied:false")
    func olderAttemptIsNotApplied() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withApp(database: directory.databasePath) { client in
            let runID = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""retries":1"#))]"))["id"]?
                .asString ?? ""
            let taskID = try await client.claimTaskID(runner: "host-a")
            // The lease of attempt 1 runs out (as the lease reaper would decide): attempt 2 is queued.
            let store = try SQLiteRunStore(path: directory.databasePath)
            _ = try await store.update(runID: runID, now: Timestamp(Date())) { change in change.leaseExpired(taskID: taskID) }
            let secondClaim = try await client.claim(runner: "host-b")
            let stale = try await client.report(taskID, reportBody("failed", #""attempt":1,"exit_code":1"#), runner: "host-a")
            let staleAnswer = try stale.json()
            let task = try await client.snapshot(runID).task(named: "build")

            #expect(secondClaim?["task"]?["attempt"]?.asInt == 2)
            #expect(stale.status == .ok)
            #expect(staleAnswer["applied"]?.asBool == false)
            #expect(task?["status"]?.asString == "dispatched")
            #expect(task?["attempt"]?.asInt == 2)
            #expect(task?["runner"]?.asString == "host-b")
        }
    }

    @Test("A report for a future attempt answers 409 task_not_claimed")
    func futureAttemptIsNotClaimed() async throws {
        try await withApp { client in
            let (_, taskID) = try await claimedTask(client)
            let response = try await client.report(taskID, reportBody("running", #""attempt":2"#))

            try expectError(response, .conflict, "task_not_claimed")
        }
    }

    @Test("A report for a task never claimed answers 409 task_not_claimed")
    func neverClaimedTaskIsRefused() async throws {
        try await withApp { client in
            let created = try await client.createRun(oneTaskRun)
            let taskID = created.task(named: "build")?["id"]?.asString ?? ""
            let response = try await client.report(taskID, reportBody("running"))
            let after = try await client.snapshot(created["id"]?.asString ?? "")

            try expectError(response, .conflict, "task_not_claimed")
            #expect(after["version"]?.asInt == 1)
        }
    }

    @Test("A report whose X-Runner-Name names another runner answers 409 task_not_claimed")
    func reportFromAnotherRunnerIsRefused() async throws {
        try await withApp { client in
            let (runID, taskID) = try await claimedTask(client)
            let response = try await client.report(taskID, reportBody("running"), runner: "host-b")
            let task = try await client.snapshot(runID).task(named: "build")

            try expectError(response, .conflict, "task_not_claimed")
            #expect(task?["status"]?.asString == "dispatched")
        }
    }

    @Test("A report whose X-Runner-Name names the holder is applied")
    func reportFromTheHolderIsApplied() async throws {
        try await withApp { client in
            let (_, taskID) = try await claimedTask(client)
            let answer = try await client.reportOK(taskID, reportBody("running"), runner: "host-a")

            #expect(answer["applied"]?.asBool == true)
        }
    }

    @Test("A report for an unknown task answers 404 task_not_found")
    func reportForUnknownTask() async throws {
        try await withApp { client in
            let response = try await client.report("task_01JZZZZZZZZZZZZZZZZZZZZZZZ", reportBody("running"))

            try expectError(response, .notFound, "task_not_found")
        }
    }

    @Test("A progress-only report is applied, steps the version once and appends no event")
    func progressOnlyReportStepsVersionWithoutEvent() async throws {
        try await withApp { client in
            let (runID, taskID) = try await claimedTask(client)
            try await client.reportOK(taskID, reportBody("running"))
            let before = try await client.snapshot(runID)
            let eventsBefore = try await client.getJSON("/v1/runs/\(runID)/events")
            let answer = try await client.reportOK(taskID, reportBody("running", #""progress":{"done":3,"total":10}"#))
            let after = try await client.snapshot(runID)
            let eventsAfter = try await client.getJSON("/v1/runs/\(runID)/events")

            #expect(answer["applied"]?.asBool == true)
            #expect(after["version"]?.asInt == (before["version"]?.asInt ?? 0) + 1)
            #expect(eventsAfter.eventTypes == eventsBefore.eventTypes)
            #expect(after.task(named: "build")?["progress"]?.canonical == JSONValue.object(["done": .int(3), "total": .int(10)]))
        }
    }

    @Test("A malformed report answers 422 naming the field")
    func malformedReportIsRefused() async throws {
        try await withApp { client in
            let (_, taskID) = try await claimedTask(client)
            let response = try await client.report(taskID, reportBody("dispatched"))
            let fields = try response.errorObject()?["details"]?.asArray?.compactMap { $0["field"]?.asString } ?? []

            try expectError(response, .unprocessableContent, "validation_failed")
            #expect(fields == ["status"])
        }
    }

    @Test("A heartbeat asks to stop nothing the runner legitimately runs")
    func heartbeatKeepsOwnTasks() async throws {
        try await withApp { client in
            let (_, taskID) = try await claimedTask(client)
            let response = try await client.send(.post, "/v1/runners/host-a/heartbeat", json: #"{"tasks":["\#(taskID)"]}"#)
            let answer = try response.json()

            #expect(response.status == .ok)
            #expect(answer["cancel"] == .array([]))
            #expect(answer["lease_s"]?.asInt == 30)
        }
    }

    @Test("A heartbeat asks to stop unknown tasks and tasks held by another runner")
    func heartbeatStopsForeignAndUnknownTasks() async throws {
        try await withApp { client in
            let (_, taskID) = try await claimedTask(client)
            let unknown = "task_01JZZZZZZZZZZZZZZZZZZZZZZZ"
            let answer = try await client.send(
                .post, "/v1/runners/host-b/heartbeat", json: #"{"tasks":["\#(taskID)","\#(unknown)"]}"#
            ).json()

            #expect(answer["cancel"] == .array([.string(taskID), .string(unknown)]))
        }
    }

    @Test("A heartbeat changes no status: the version stays and no event is appended")
    func heartbeatStepsNothing() async throws {
        try await withApp { client in
            let (runID, taskID) = try await claimedTask(client)
            let before = try await client.snapshot(runID)
            _ = try await client.send(.post, "/v1/runners/host-a/heartbeat", json: #"{"tasks":["\#(taskID)"]}"#)
            let after = try await client.snapshot(runID)

            #expect(after["version"] == before["version"])
            #expect(after.task(named: "build")?["heartbeat_at"]?.asString != nil)
        }
    }
}
