import Foundation
import RunwardenTestSupport
import Testing

/// The operator's guide and the CLI reference stay true as commands and flags are added: every
/// flag the built binary's `--help` lists is documented where a reader looks for it.
@Suite("The docs cover every command and flag", .timeLimit(.minutes(2)))
struct CommandDocsTests {
    static func document(_ name: String) throws -> String {
        try String(contentsOf: packageRoot.appendingPathComponent("docs/\(name)"), encoding: .utf8)
    }

    static func help(_ arguments: [String]) async throws -> String {
        let (status, output) = try await ChildProcess.run(runwardenBinary.path, arguments + ["--help"])
        #expect(status == 0, "\(arguments) --help: \(output)")
        return output
    }

    /// The `--flags` a help text lists (ArgumentParser's own `--help` and `--version` aside).
    static func flags(in help: String) -> Set<String> {
        Set(help.matches(of: /(?:^|[\s,\[])(--[a-z][a-z0-9-]*)/).map { String($0.output.1) }).subtracting(["--help", "--version"])
    }

    /// The subcommands `runwarden --help` lists.
    static func subcommands(in help: String) -> [String] {
        guard let start = help.range(of: "SUBCOMMANDS:\n") else { return [] }
        return help[start.upperBound...].split(separator: "\n").compactMap { line in
            // A subcommand line is indented by two spaces; its wrapped description by more.
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
            guard let name = line.split(separator: " ").first, name.allSatisfy({ $0.isLowercase || $0 == "-" }) else { return nil }
            return String(name)  // not the closing "See 'runwarden help <subcommand>'"
        }
    }

    /// The text of the section under `heading`, up to the next heading of the same level.
    static func section(_ heading: String, of document: String) -> Substring? {
        guard let start = document.range(of: "\n\(heading)\n") else { return nil }
        let rest = document[start.upperBound...]
        return rest.range(of: "\n## ").map { rest[..<$0.lowerBound] } ?? rest
    }

    /// The flags of `flags` that `text` never names (`--log` is not named by `--log-level`).
    static func undocumented(_ flags: Set<String>, in text: Substring) -> [String] {
        flags.filter { flag in
            !text.ranges(of: flag).contains { range in
                guard range.upperBound < text.endIndex else { return true }
                let next = text[range.upperBound]
                return !(next.isLetter || next.isNumber || next == "-")
            }
        }.sorted()
    }

    @Test("every flag of serve and runner is in the Settings section of docs/operations.md")
    func serverAndRunnerFlags() async throws {
        let settings = try #require(Self.section("## Settings", of: try Self.document("operations.md")))
        for command in ["serve", "runner"] {
            let flags = Self.flags(in: try await Self.help([command]))
            #expect(flags.contains("--server") || flags.contains("--database"), "\(command) --help lists no flags: \(flags)")
            #expect(Self.undocumented(flags, in: settings) == [], "runwarden \(command)")
        }
        // The check itself: a flag nobody wrote down is reported.
        #expect(Self.undocumented(["--made-up-flag", "--port"], in: settings) == ["--made-up-flag"])
    }

    @Test("every command has its section in docs/cli.md, naming each of its flags")
    func everyCommandAndFlag() async throws {
        let reference = try Self.document("cli.md")
        let commands = Self.subcommands(in: try await Self.help([]))
        #expect(commands.contains("serve") && commands.contains("logs") && commands.count >= 15, "\(commands)")
        for command in commands {
            guard let section = Self.section("## `runwarden \(command)`", of: reference) else {
                Issue.record("docs/cli.md has no section ## `runwarden \(command)`")
                continue
            }
            // serve's and runner's flags live in the operator's guide (tested above).
            if command == "serve" || command == "runner" { continue }
            let common = Self.section("## Options every client command takes", of: reference) ?? ""
            let flags = Self.flags(in: try await Self.help([command]))
            #expect(Self.undocumented(flags, in: section + common) == [], "runwarden \(command)")
        }
    }
}
