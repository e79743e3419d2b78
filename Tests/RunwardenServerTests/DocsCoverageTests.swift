import Foundation
import RunwardenTestSupport
import RunwardenCore
import RunwardenStoreSQLite
import Testing

@testable import RunwardenServer

/// The API reference in the repository stays true as routes, error codes and event types are
/// added: each must be documented in docs/api.md, where a reader looks for it.
@Suite("The API reference covers the server")
struct DocsCoverageTests {

    static func document(_ name: String) throws -> String {
        try String(contentsOf: packageRoot.appendingPathComponent("docs/\(name)"), encoding: .utf8)
    }

    /// The routes without a `### `METHOD /path`` heading in `reference` (path parameters written `{name}`).
    static func undocumented(_ routes: [Route], in reference: String) -> [String] {
        let headings = Set(reference.split(separator: "\n").filter { $0.hasPrefix("### `") }.map { String($0.dropFirst(4)) })
        return routes.map { route in
            let path = route.path.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            return "`\(route.method.rawValue) \(path)`"
        }.filter { !headings.contains($0) }
    }

    /// The names that do not appear in backquotes in the section of `reference` under `heading`.
    static func missing(_ names: [String], section heading: String, of reference: String) -> [String] {
        guard let start = reference.range(of: "\n\(heading)\n") else { return names }
        let rest = reference[start.upperBound...]
        let section = rest.range(of: "\n## ").map { rest[..<$0.lowerBound] } ?? rest
        return names.filter { !section.contains("`\($0)`") }
    }

    func routes() throws -> [Route] {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let service = RunService(store: try SQLiteRunStore(path: directory.databasePath), leaseSeconds: 30, logger: quietLogger)
        return declaredRoutes(service: service, configuration: testConfiguration(database: directory.databasePath))
    }

    @Test("every route the router declares has its section in docs/api.md")
    func everyRouteIsDocumented() throws {
        let reference = try Self.document("api.md")
        let routes = try routes()
        #expect(routes.count > 30, "the route table looks empty: \(routes.count)")
        #expect(Self.undocumented(routes, in: reference) == [])
    }

    @Test("a route added without documentation is caught, by its method and path")
    func aNewRouteWithoutDocumentationFails() throws {
        let reference = try Self.document("api.md")
        let dummy = Route(.get, "/v1/undocumented/:thing", role: .client) { _, _ in .init(status: .ok) }
        let patched = Route(.patch, "/v1/runs/:id", role: .client) { _, _ in .init(status: .ok) }
        #expect(Self.undocumented(try routes() + [dummy, patched], in: reference) == ["`GET /v1/undocumented/{thing}`", "`PATCH /v1/runs/{id}`"])
    }

    @Test("every error code the API answers is in the Errors table of docs/api.md")
    func everyErrorCodeIsDocumented() throws {
        let codes = ErrorCode.allCases.filter { $0 != .unrecognized }.map(\.rawValue)
        #expect(Self.missing(codes, section: "## Errors", of: try Self.document("api.md")) == [])
        #expect(Self.missing(["no_such_code"], section: "## Errors", of: try Self.document("api.md")) == ["no_such_code"])
    }

    @Test("every event type is in the Event types section of docs/api.md")
    func everyEventTypeIsDocumented() throws {
        #expect(EventType.all.contains("runner.lost") && EventType.all.contains("task.retrying"))
        #expect(Self.missing(EventType.all, section: "## Event types", of: try Self.document("api.md")) == [])
    }

    @Test("README and docs/ link only to files inside the repository, and every such link resolves")
    func linksStayInsideTheRepository() throws {
        let docs = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".md") }.map { "docs/\($0)" }
        #expect(docs.contains("docs/api.md") && docs.contains("docs/operations.md") && docs.contains("docs/cli.md"))
        var broken: [String] = []
        for file in ["README.md"] + docs {
            let text = try String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)
            let folder = URL(fileURLWithPath: file).deletingLastPathComponent().relativePath
            for target in Self.linkTargets(text) where !target.hasPrefix("#") {
                if target.contains("://") && !Self.isLoopback(target) {
                    broken.append("\(file): \(target) points outside the repository")
                    continue
                }
                if target.contains("://") || target.hasPrefix("mailto:") { continue }
                let path = String(target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0])
                let resolved = packageRoot.appendingPathComponent(folder == "." ? path : "\(folder)/\(path)").standardized
                if !resolved.path.hasPrefix(packageRoot.standardized.path) || !FileManager.default.fileExists(atPath: resolved.path) {
                    broken.append("\(file): \(target) does not resolve inside the repository")
                }
            }
        }
        #expect(broken == [])
    }

    /// The targets of Markdown links `[text](target)` and autolinks `<scheme://…>`.
    static func linkTargets(_ text: String) -> [String] {
        let inline = text.matches(of: /\]\(([^)\s]+)\)/).map { String($0.output.1) }
        let auto = text.matches(of: /<([a-z]+:\/\/[^>\s]+)>/).map { String($0.output.1) }
        return inline + auto
    }

    /// A link to the server a reader runs on this machine (`http://127.0.0.1:8080/ui`) is fine.
    static func isLoopback(_ target: String) -> Bool {
        guard let host = URLComponents(string: target)?.host else { return false }
        return host == "127.0.0.1" || host == "localhost" || host == "::1"
    }
}
