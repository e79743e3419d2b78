import RunwardenCore

/// The dashboard as served: `Resources/dashboard.html` with its status lists filled in from
/// `RunStatus` and `TaskStatus`, so the page never keeps a copy of them.
enum DashboardPage {
    static let placeholder = #"const STATUSES = {"run": [], "runTerminal": [], "task": [], "taskTerminal": []};"#

    static let html: [UInt8] = {
        let page = String(decoding: PackageResources.dashboard_html, as: UTF8.self)
        precondition(page.contains(placeholder), "dashboard.html lost its STATUSES line")
        let statuses = JSONValue.object([
            "run": JSONValue(strings: RunStatus.allCases.map(\.rawValue)),
            "runTerminal": JSONValue(strings: RunStatus.allCases.filter(\.isTerminal).map(\.rawValue)),
            "task": JSONValue(strings: TaskStatus.allCases.map(\.rawValue)),
            "taskTerminal": JSONValue(strings: TaskStatus.allCases.filter(\.isTerminal).map(\.rawValue)),
        ])
        let filled = "const STATUSES = " + String(decoding: statuses.encoded(), as: UTF8.self) + ";"
        return Array(page.replacingOccurrences(of: placeholder, with: filled).utf8)
    }()
}
