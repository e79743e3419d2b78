import Foundation
import RunwardenClient
import RunwardenCore

/// A task's environment (SPEC §6): the runner's own, minus every `RUNWARDEN_*` variable (they
/// hold its credentials — a task holding the runner token could claim other runs' tasks or
/// report any task succeeded); then the task's `env` and `secret_env`; then the variables naming the task,
/// which nothing overrides. `TRACEPARENT` and `TRACESTATE` are the attempt's trace context
/// (SPEC §11) when the claim gave one — a task using OpenTelemetry joins the run's trace under
/// its attempt's span — and never the runner's own.
///
/// A task's own `env` may set `RUNWARDEN_*` names (say `RUNWARDEN_URL` and `RUNWARDEN_TOKEN`
/// for a task that drives the CLI): those values come from whoever submitted the run, not from
/// the runner, so nothing of the runner leaks.
enum TaskEnvironment {
    static let reservedPrefix = "RUNWARDEN_"
    static let traceVariables: Set<String> = ["TRACEPARENT", "TRACESTATE"]

    static func make(
        inherited: [String: String], task: ClaimedTask, workDirectory: URL, serverURL: String
    ) -> [String: String] {
        var values = inherited.filter { !$0.key.hasPrefix(reservedPrefix) && !traceVariables.contains($0.key) }
        for (key, value) in task.env { values[key] = value }
        for (key, value) in task.secretEnv ?? [:] { values[key] = value }
        values["RUNWARDEN_RUN_ID"] = task.runID
        values["RUNWARDEN_TASK_ID"] = task.id
        values["RUNWARDEN_TASK_NAME"] = task.name
        values["RUNWARDEN_ATTEMPT"] = String(task.attempt)
        values["RUNWARDEN_WORKSPACE"] = workDirectory.path
        values["RUNWARDEN_SERVER_URL"] = serverURL
        if let traceparent = task.traceparent {
            values["TRACEPARENT"] = traceparent
            values["TRACESTATE"] = task.tracestate
        }
        return values
    }
}
