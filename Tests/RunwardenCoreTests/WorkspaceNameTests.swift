import Testing
import RunwardenCore

/// Workspace names (SPEC §6): each is one directory on a runner, never a path.
@Suite("Workspace names")
struct WorkspaceNameTests {
    static let longest = "a" + String(repeating: "b", count: 127)

    @Test("accepted names", arguments: ["repo-a", "A", "0", "repo_a.v2", "x.", "a..b", longest])
    func accepted(name: String) {
        #expect(WorkspaceName.isValid(name))
        #expect(ValidationTests.errors(Self.body(workspace: name)).isEmpty)
    }

    @Test(
        "refused names are 422 validation_failed on tasks[i].workspace",
        arguments: [
            "", ".", "..", ".hidden", "-rf", "_x", "a/b", "../etc", "a\\b", "a b", "a\u{0}b", "a\nb", "répo", "ｒｅｐｏ",
            "a:b", longest + "c",
        ])
    func refused(name: String) {
        #expect(!WorkspaceName.isValid(name))
        let errors = ValidationTests.errors(Self.body(workspace: name))
        #expect(errors.map(\.field) == ["tasks[1].workspace"], "\(errors)")
    }

    static func body(workspace: String) -> String {
        var escaped = ""
        for scalar in workspace.unicodeScalars {
            escaped += scalar.value < 0x20 || scalar == "\"" || scalar == "\\" ? "\\u" + hex4(scalar.value) : String(scalar)
        }
        return #"{"workflow": "w", "tasks": [{"name": "a", "command": "x"}, {"name": "b", "command": "x", "workspace": "\#(escaped)"}]}"#
    }

    static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}
