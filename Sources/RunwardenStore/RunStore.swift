import Crypto
import RunwardenCore

/// Durable storage of runs, tasks, events and workspace locks.
///
/// Every write is one transaction: a store loads the run, applies a `RunChange` (where `Core`
/// decides the transition), and commits the new state together with its events and lock rows.
/// Nothing reads a half-committed change.
public protocol RunStore: WebhookStore, RunnerStore, RunnerTokenStore, LogStore {
    /// Stores a new run and its events: `run.created` first, then the `task.queued` of approval
    /// tasks that wait from the start (`Run.approvalRequests`). With an idempotency key, an
    /// equal earlier body answers its run instead (`replayed`), a different one `keyReused`.
    func createRun(_ run: Run, events: [EventDraft], idempotency: IdempotencyKey?) async throws -> CreateOutcome

    func run(id: String) async throws -> RunRecord?
    /// The run's own fields without reading its tasks: `tasks` is empty and `state.taskCounts`
    /// holds their counts. What a summary, a list item or a stream's check needs.
    func runSummary(id: String) async throws -> Run?
    /// The stamp of the run's snapshot (see `SnapshotStamp`) when this store can give it
    /// without reading: only a store whose every writer is in this process can. Nil otherwise.
    func snapshotStamp(runID: String) -> SnapshotStamp?
    /// The runs holding the slots of a concurrency key, oldest first (SPEC §10): the `held_by`
    /// of a run waiting for one. One range of the key's index.
    func concurrencyHolders(key: String) async throws -> [String]
    /// The run holding the task, and the task's index in it.
    func task(id: String) async throws -> (record: RunRecord, index: Int)?
    /// A page of run summaries (as `runSummary` reads them).
    func runs(_ query: RunQuery) async throws -> RunPage
    /// Events after `seq`, in `seq` order: one run's, or every run's when `runID` is nil.
    func events(runID: String?, after seq: Int64, limit: Int) async throws -> [Event]
    /// The newest event's `seq`, 0 when there is none.
    func latestSeq() async throws -> Int64

    /// Compacts up to `limit` runs that finished before `cutoff` and are not compacted yet, in
    /// one short transaction: their events, deliveries and idempotency keys are deleted, the
    /// run and its tasks stay (`compactedAt` set, one version step). Returns how many.
    func compactRuns(finishedBefore cutoff: Timestamp, limit: Int, now: Timestamp) async throws -> Int
    /// Removes up to `limit` runner events (`runner.*`) older than `cutoff`, oldest first, with
    /// their deliveries, in one short transaction; `retainedEvents` counts them as removed.
    /// Returns how many.
    func compactRunnerEvents(before cutoff: Timestamp, limit: Int) async throws -> Int
    /// Where retention has been: the greatest `seq` of an event it removed (0: none), and the
    /// oldest event kept (nil: none). A reader whose cursor is below the first missed events.
    func retainedEvents() async throws -> RetainedEvents

    /// Applies `body` to the run in one transaction, loading only what `scope` names; nil when
    /// the run does not exist. When the change reaches past its scope (`needsWholeRun`), it is
    /// applied again to the whole run, so `body` may run twice and must not do anything else.
    /// An error thrown by `body` commits nothing and is rethrown.
    func update<Value: Sendable>(
        runID: String, scope: ChangeScope, now: Timestamp, _ body: @escaping @Sendable (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>?

    /// `update(runID:…)` of the run that holds task `taskID`, found in the same transaction
    /// (a report names only its task), with the scope `.task(taskID, dependents:)`; nil when no
    /// such task exists.
    func update<Value: Sendable>(
        runOfTask taskID: String, dependents: Bool, now: Timestamp,
        _ body: @escaping @Sendable (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>?

    /// Hands the oldest claimable task this runner can run to it (SPEC §2 "Runner protocol"):
    /// `queued`, workspace free, every label present. Takes the workspace lock in the same commit.
    /// With a `claimID`, a task still `dispatched` to this runner under that id is handed out
    /// again instead (no change, no event): the runner lost the first answer and asked again.
    /// A draining runner (SPEC §8) is handed nothing new.
    func claim(runner: String, labels: Set<String>, claimID: String?, now: Timestamp) async throws -> Committed<RunTask>?

    /// Refreshes `heartbeat_at` of the runner's active tasks among `taskIDs`; returns the ids the
    /// runner must stop. No version step, no event.
    func heartbeat(runner: String, taskIDs: [String], now: Timestamp) async throws -> [String]

    func locks() async throws -> [WorkspaceLock]
    /// Releases a workspace lock by hand; nil when the workspace is free.
    func releaseLock(workspace: String, now: Timestamp) async throws -> WorkspaceLock?

    /// What the server itself must do now: leases that ran out (no heartbeat since
    /// `leaseCutoff`), tasks and runs past their deadline. At most `limit` items.
    func dueWork(leaseCutoff: Timestamp, now: Timestamp, limit: Int) async throws -> [DueWork]

    /// Gives every claimed task a fresh lease: after a server start, runners get one full
    /// lease to heartbeat again before their tasks can be reaped. Returns how many.
    func renewLeases(now: Timestamp) async throws -> Int

    /// Throws when the database cannot be reached (for `/readyz`).
    func checkHealth() async throws

    /// How many runs and tasks are in each status now (for `/metrics`).
    func statusCounts() async throws -> StatusCounts
}

extension RunStore {
    /// A new run with its one event, `run.created`.
    public func createRun(_ run: Run, event: EventDraft, idempotency: IdempotencyKey?) async throws -> CreateOutcome {
        try await createRun(run, events: [event], idempotency: idempotency)
    }
}

/// See `RunStore.retainedEvents`.
public struct RetainedEvents: Sendable, Equatable {
    public var removedThrough: Int64
    public var oldestKept: Int64?
    public init(removedThrough: Int64, oldestKept: Int64?) {
        self.removedThrough = removedThrough
        self.oldestKept = oldestKept
    }
}

/// Runs and tasks by status, keyed by the status's name. Both stores keep these as changes
/// commit (triggers on `runs` and `tasks`), so reading them costs nothing per row.
public struct StatusCounts: Sendable, Equatable {
    public var runs: [String: Int]
    public var tasks: [String: Int]
    public init(runs: [String: Int], tasks: [String: Int]) {
        self.runs = runs
        self.tasks = tasks
    }

    /// Adds a row of the `status_counts` table (`kind` is `runs` or `tasks`); zeros are left out.
    public mutating func add(kind: String, status: String, count: Int) {
        guard count != 0 else { return }
        if kind == "runs" { runs[status, default: 0] += count } else if kind == "tasks" { tasks[status, default: 0] += count }
    }
}

/// A run with the holders of the workspace locks its tasks use (for tasks' `blocked_by`) and,
/// while it waits for a slot of its concurrency key, the runs holding them (its own `blocked_by`).
public struct RunRecord: Sendable, Equatable {
    public var run: Run
    public var lockHolders: [String: String]
    public var concurrencyHolders: [String]
    public init(run: Run, lockHolders: [String: String], concurrencyHolders: [String] = []) {
        self.run = run
        self.lockHolders = lockHolders
        self.concurrencyHolders = concurrencyHolders
    }
}

/// What a change loads of its run besides the run's own row.
public enum ChangeScope: Sendable, Equatable {
    /// One task; with `dependents`, also the tasks that need it (for a change that may end it).
    case task(String, dependents: Bool)
    /// Every task: a cancel, a run's timeout, or a change that reached past its task.
    case wholeRun
}

/// What a committed change produced: the run as stored and its numbered events.
public struct Committed<Value: Sendable>: Sendable {
    public var value: Value
    /// The run as stored, holding the tasks the change loaded (all of them only when it had
    /// the whole run): enough for the changed tasks and the run's own fields, not a snapshot.
    public var record: RunRecord
    public var events: [Event]
    /// A task became `queued` or a workspace was freed: claimers waiting for work should look.
    public var freesWork: Bool
    /// Attempts the change ended (their trace spans are sent once it is committed).
    public var endedAttempts: [EndedAttempt]
    /// The change wrote webhook outbox rows: the dispatcher should look (events without a
    /// subscription or callback that wants them queue nothing, and wake nobody).
    public var queuedDeliveries: Bool
    /// Changes of other runs committed in the same transaction: older runs of a concurrency key
    /// canceled by a new one, and runs admitted when this one gave up its slot (SPEC §10).
    public var others: [Committed<Void>]
    public init(
        value: Value, record: RunRecord, events: [Event], freesWork: Bool = false, endedAttempts: [EndedAttempt] = [],
        queuedDeliveries: Bool = false, others: [Committed<Void>] = []
    ) {
        self.endedAttempts = endedAttempts
        self.queuedDeliveries = queuedDeliveries
        self.others = others
        self.value = value
        self.record = record
        self.events = events
        self.freesWork = freesWork
        self.others = others
    }
}

extension Committed {
    /// The same commit with its value transformed; nil when `transform` gives nil.
    public func compactMapValue<New: Sendable>(_ transform: (Value) -> New?) -> Committed<New>? {
        transform(value).map {
            Committed<New>(
                value: $0, record: record, events: events, freesWork: freesWork, endedAttempts: endedAttempts,
                queuedDeliveries: queuedDeliveries, others: others)
        }
    }

    /// This commit and every other run's change committed with it.
    public var allChanges: [Committed<Void>] {
        [
            Committed<Void>(
                value: (), record: record, events: events, freesWork: freesWork, endedAttempts: endedAttempts,
                queuedDeliveries: queuedDeliveries)
        ] + others.flatMap(\.allChanges)
    }
}

/// An `Idempotency-Key`, scoped to the client token that sent it, with a digest of the body.
/// Neither the token nor the body is stored: the body holds the tasks' `env`, often secrets.
public struct IdempotencyKey: Sendable, Equatable {
    /// SHA-256 (hex) of the client token, or `open` without tokens.
    public var scope: String
    public var key: String
    /// SHA-256 (hex) of the body's canonical JSON: equal JSON, equal digest.
    public var bodyDigest: String

    public init(scope: String, key: String, bodyDigest: String) {
        self.scope = scope
        self.key = key
        self.bodyDigest = bodyDigest
    }

    public init(token: String?, key: String, canonicalBody: String) {
        self.init(scope: token.map(Self.digest) ?? "open", key: key, bodyDigest: Self.digest(canonicalBody))
    }

    /// Lower-case hex SHA-256 of the text's UTF-8 — what PostgreSQL's
    /// `encode(sha256(convert_to(t, 'UTF8')), 'hex')` gives, which its migration relies on.
    public static func digest(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

public enum CreateOutcome: Sendable {
    case created(Committed<Void>)
    case replayed(RunRecord)
    case keyReused
}

public struct RunQuery: Sendable, Equatable {
    public var status: RunStatus?
    public var workflow: String?
    public var limit: Int
    /// Exclusive upper bound: the id of the last run of the previous page.
    public var before: String?
    /// Any of these statuses (SPEC §10 bulk cancel); nil: any status.
    public var statuses: [RunStatus]?
    /// Top-level metadata members whose value is exactly this string (SPEC §10).
    public var metadata: [String: String]
    /// Created at or after / strictly before these moments.
    public var createdAfter: Timestamp?
    public var createdBefore: Timestamp?

    public init(
        status: RunStatus? = nil, workflow: String? = nil, limit: Int = 50, before: String? = nil, statuses: [RunStatus]? = nil,
        metadata: [String: String] = [:], createdAfter: Timestamp? = nil, createdBefore: Timestamp? = nil
    ) {
        self.status = status
        self.workflow = workflow
        self.limit = limit
        self.before = before
        self.statuses = statuses
        self.metadata = metadata
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
    }

    /// The metadata filters in one order, so equal queries give equal SQL text.
    public var sortedMetadata: [(key: String, value: String)] { metadata.sorted { $0.key < $1.key } }
}

public struct RunPage: Sendable {
    public var runs: [Run]
    public var nextCursor: String?
    public init(runs: [Run], nextCursor: String?) {
        self.runs = runs
        self.nextCursor = nextCursor
    }
}

public struct WorkspaceLock: Sendable, Equatable {
    public var workspace: String
    public var taskID: String
    public var runID: String
    public var runner: String
    public var acquiredAt: Timestamp
    public init(workspace: String, taskID: String, runID: String, runner: String, acquiredAt: Timestamp) {
        self.workspace = workspace
        self.taskID = taskID
        self.runID = runID
        self.runner = runner
        self.acquiredAt = acquiredAt
    }
}

/// One piece of work the reaper must do, each applied through `RunChange`.
public enum DueWork: Sendable, Equatable {
    case leaseExpired(runID: String, taskID: String)
    case taskTimedOut(runID: String, taskID: String)
    case runTimedOut(runID: String)

    public var runID: String {
        switch self {
        case .leaseExpired(let runID, _), .taskTimedOut(let runID, _), .runTimedOut(let runID): runID
        }
    }

    public var taskID: String? {
        switch self {
        case .leaseExpired(_, let taskID), .taskTimedOut(_, let taskID): taskID
        case .runTimedOut: nil
        }
    }
}

public enum StoreError: Error, Sendable, Equatable {
    /// The database file or server could not be opened, read or written.
    case unavailable(String)
}

extension RunStore {
    /// Writers on other nodes change runs unseen: only a read can tell.
    public func snapshotStamp(runID: String) -> SnapshotStamp? { nil }

    /// A change of the whole run.
    public func update<Value: Sendable>(
        runID: String, now: Timestamp, _ body: @escaping @Sendable (inout RunChange) throws -> Value
    ) async throws -> Committed<Value>? {
        try await update(runID: runID, scope: .wholeRun, now: now, body)
    }

    public func claim(runner: String, labels: Set<String>, now: Timestamp) async throws -> Committed<RunTask>? {
        try await claim(runner: runner, labels: labels, claimID: nil, now: now)
    }
}

extension RunTask {
    /// The `claim_id` column: the claim id while the task waits for its runner to start it,
    /// so the index holds only claims that could still be asked for again.
    public var pendingClaimID: String? { status == .dispatched ? state.claimID : nil }
}

/// The runner registry (SPEC §8). A runner's recorded status changes only here, each change
/// with its `runner.*` event and outbox rows in the same transaction, and only when the row
/// still holds the status the change starts from: nodes and reaper passes that race record
/// (and announce) a change once.
public protocol RunnerStore: Sendable {
    /// A claim's or heartbeat's contact: the runner appears at its first, takes the fields the
    /// contact carries, is heard from `now`, and — when its recorded status was not `online` —
    /// becomes `online` with a `runner.online` event.
    func recordContact(_ contact: RunnerContact, now: Timestamp) async throws -> RunnerTouch
    /// The runner said goodbye: `offline` (with a `runner.offline` event unless it already was);
    /// nil when no such runner.
    func recordGoodbye(runner name: String, now: Timestamp) async throws -> RunnerTouch?
    /// Names of runners recorded `online` and not heard from since `cutoff`, most silent first.
    func silentRunners(since cutoff: Timestamp, limit: Int) async throws -> [String]
    /// Records a silent runner gone — `lost` while it holds tasks, else `offline` — with its
    /// event, if it is still recorded `online` and silent since `cutoff`; nil when nothing changed.
    func recordSilence(runner name: String, cutoff: Timestamp, now: Timestamp) async throws -> Event?

    func runner(name: String) async throws -> Runner?
    /// Runners by name; `after` is the last name of the previous page.
    func runners(limit: Int, after: String?) async throws -> (items: [Runner], nextCursor: String?)
    /// Sets whether the runner is draining; nil when no such runner.
    func setDraining(_ draining: Bool, runner name: String) async throws -> Runner?
    /// How many runners have each recorded status (for `/metrics`).
    func runnerCounts() async throws -> [RunnerStatus: Int]
}

/// Per-runner tokens (SPEC §8), kept by the SHA-256 of their secret.
public protocol RunnerTokenStore: Sendable {
    func createRunnerToken(_ token: RunnerToken) async throws
    /// The token whose secret has this digest; nil when none (never created, or revoked).
    func runnerToken(digest: String) async throws -> RunnerToken?
    /// Oldest first; `after` is the last id of the previous page.
    func runnerTokens(limit: Int, after: String?) async throws -> (items: [RunnerToken], nextCursor: String?)
    /// Revokes (deletes) the token; false when unknown.
    func revokeRunnerToken(id: String) async throws -> Bool
}

/// What recording a contact or a goodbye did: whether the runner is draining (a claim then
/// gets nothing), and the `runner.*` event it appended, if any.
public struct RunnerTouch: Sendable, Equatable {
    public var draining: Bool
    public var events: [Event]
    public init(draining: Bool, events: [Event]) {
        self.draining = draining
        self.events = events
    }
}

/// The statements on `tasks` both backends use for the registry.
public enum RunnerSQL {
    /// The statuses in which a task is held by its runner.
    public static let activeStatuses = "('dispatched', 'running', 'canceling')"
    /// A runner's active tasks (`running`), one index range (`tasks_active_by_runner`): `?`/`$1` is the name.
    public static func running(_ name: String) -> String {
        "SELECT id FROM tasks WHERE runner = \(name) AND status IN \(activeStatuses) ORDER BY id"
    }
    /// Whether the runner holds any task, one index seek.
    public static func holdsTasks(_ name: String) -> String {
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE runner = \(name) AND status IN \(activeStatuses))"
    }
    /// Whether the runner is drained (no row: not), one primary-key lookup.
    public static func isDraining(_ name: String) -> String {
        "SELECT draining FROM runners WHERE name = \(name)"
    }
    /// Runner events older than a cutoff (`$1`/`?`), oldest first, at most `limit` of them: found
    /// through the events' `(run_id, …)` index, where runner events are the NULL `run_id`s.
    public static func oldRunnerEvents(cutoff: String, limit: String) -> String {
        "SELECT seq FROM events WHERE run_id IS NULL AND timestamp < \(cutoff) ORDER BY seq LIMIT \(limit)"
    }
    /// The deliveries of runner events up to a `seq` (`$1`/`?`): their lanes are `runner:NAME`
    /// (`Outbox.lane(runner:)`), one range of `deliveries_by_run`.
    public static func runnerDeliveriesThrough(_ seq: String) -> String {
        "DELETE FROM deliveries WHERE run_id >= 'runner:' AND run_id < 'runner;' AND event_seq <= \(seq)"
    }
    /// The partial index both read through; created by each backend's migration.
    public static let activeByRunnerIndex =
        "CREATE INDEX tasks_active_by_runner ON tasks (runner, id) WHERE status IN \(activeStatuses)"
    /// Silent runners are found through this index of the ones recorded `online`.
    public static let onlineIndex = "CREATE INDEX runners_online ON runners (last_seen_at) WHERE status = 'online'"
}

/// The per-runner token table, the same in both backends but for the integer type.
public enum RunnerTokenSQL {
    public static func table(milliseconds: String) -> String {
        """
        CREATE TABLE runner_tokens (
            id TEXT PRIMARY KEY NOT NULL,
            token_sha256 TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL,
            runner_names TEXT,
            labels TEXT,
            expires_at \(milliseconds),
            created_at \(milliseconds) NOT NULL
        )
        """
    }

    public static let columns = "id, token_sha256, description, runner_names, labels, expires_at, created_at"

    /// A token from its columns (`columns`' order); the scope lists are JSON text, nil for "any".
    public static func token(
        id: String, digest: String, description: String, runnerNames: String?, labels: String?, expiresAt: Int64?, createdAt: Int64
    ) throws -> RunnerToken {
        RunnerToken(
            id: id, digest: digest, description: description,
            scope: RunnerTokenScope(
                runnerNames: try runnerNames.map { try JSONColumn.decode([String].self, $0) },
                labels: try labels.map { try JSONColumn.decode([String].self, $0) }),
            expiresAt: expiresAt.map(Timestamp.init(milliseconds:)), createdAt: Timestamp(milliseconds: createdAt))
    }
}
