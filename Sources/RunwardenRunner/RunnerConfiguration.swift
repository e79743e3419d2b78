/// Everything `runwarden runner` can be told.
public struct RunnerConfiguration: Sendable {
    public var servers: [String]
    public var token: String?
    /// A PEM file of the CA certificates to trust for HTTPS (`--ca-file`); nil: the system's.
    public var caFile: String?
    public var name: String
    public var labels: [String]
    public var concurrency: Int
    /// Holds `workspaces/`, `tasks/` (one directory per task without a workspace), `logs/` and `spool/`.
    public var workDir: String
    /// How long a claim long-polls before asking again.
    public var claimWaitSeconds = 20
    /// Between SIGTERM and SIGKILL when a task is stopped (cancel, timeout).
    public var killGrace: Duration = .seconds(10)
    /// On SIGINT/SIGTERM, how long running tasks may go on before they are stopped.
    public var shutdownGrace: Duration = .seconds(30)
    /// How much of a failed task's stderr goes into its error message.
    public var stderrTailBytes = 4096

    public init(servers: [String], token: String?, name: String, labels: [String], concurrency: Int, workDir: String) {
        self.servers = servers
        self.token = token
        self.name = name
        self.labels = labels
        self.concurrency = concurrency
        self.workDir = workDir
    }
}
