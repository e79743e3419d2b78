/// The runner protocol's answers (SPEC §2 "Runner protocol").

/// A task as a claim hands it to a runner.
public struct ClaimedTask: Codable, Sendable, Equatable {
    public var id: String
    public var runID: String
    public var name: String
    public var command: [String]
    public var env: [String: String]
    public var workspace: String?
    public var timeoutS: Int?
    public var attempt: Int
    public var labels: [String]

    public init(
        id: String, runID: String, name: String, command: [String], env: [String: String] = [:], workspace: String? = nil,
        timeoutS: Int? = nil, attempt: Int = 1, labels: [String] = []
    ) {
        self.id = id
        self.runID = runID
        self.name = name
        self.command = command
        self.env = env
        self.workspace = workspace
        self.timeoutS = timeoutS
        self.attempt = attempt
        self.labels = labels
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case id
        case runID = "run_id"
        case name, command, env, workspace
        case timeoutS = "timeout_s"
        case attempt, labels
    }
}

public struct ClaimAnswer: Codable, Sendable, Equatable {
    public var task: ClaimedTask
    public var leaseS: Int

    public init(task: ClaimedTask, leaseS: Int) {
        self.task = task
        self.leaseS = leaseS
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case task
        case leaseS = "lease_s"
    }
}

public struct HeartbeatAnswer: Codable, Sendable, Equatable {
    public var cancel: [String]
    public var leaseS: Int

    public init(cancel: [String], leaseS: Int) {
        self.cancel = cancel
        self.leaseS = leaseS
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case cancel
        case leaseS = "lease_s"
    }
}

public struct ReportAnswer: Codable, Sendable, Equatable {
    public var applied: Bool
    public var task: TaskSnapshot

    public init(applied: Bool, task: TaskSnapshot) {
        self.applied = applied
        self.task = task
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case applied, task
    }
}
