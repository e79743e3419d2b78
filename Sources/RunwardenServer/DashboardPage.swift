import RunwardenCore

/// The dashboard as served: `Resources/dashboard.html` with its status lists filled in from
/// `RunStatus` and `TaskStatus`, so the page never keeps a copy of them, and the run views
/// (`Resources/dashboard_views.js`: task graph, attempt timeline, workflow history) as a script
/// of their own before the page's main script, which calls them.
enum DashboardPage {
    static let placeholder = #"const STATUSES = {"run": [], "runTerminal": [], "task": [], "taskTerminal": []};"#
    static let viewsPlaceholder = "<!-- dashboard_views.js -->"

    static let html: [UInt8] = {
        let page = String(decoding: PackageResources.dashboard_html, as: UTF8.self)
        precondition(page.contains(placeholder), "dashboard.html lost its STATUSES line")
        precondition(page.contains(viewsPlaceholder), "dashboard.html lost the place of dashboard_views.js")
        let statuses = JSONValue.object([
            "run": JSONValue(strings: RunStatus.allCases.map(\.rawValue)),
            "runTerminal": JSONValue(strings: RunStatus.allCases.filter(\.isTerminal).map(\.rawValue)),
            "task": JSONValue(strings: TaskStatus.allCases.map(\.rawValue)),
            "taskTerminal": JSONValue(strings: TaskStatus.allCases.filter(\.isTerminal).map(\.rawValue)),
        ])
        let filled = "const STATUSES = " + String(decoding: statuses.encoded(), as: UTF8.self) + ";"
        let views = "<script>\n" + String(decoding: PackageResources.dashboard_views_js, as: UTF8.self) + "</script>"
        return Array(
            page.replacingOccurrences(of: placeholder, with: filled).replacingOccurrences(of: viewsPlaceholder, with: views).utf8)
    }()
}
