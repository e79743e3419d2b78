import ArgumentParser
import Foundation

/// Where a command's token comes from: `--token T` or `--token-file PATH` (not both), else the
/// environment — the named token variables in order, or `RUNWARDEN_TOKEN_FILE`. A file keeps the
/// token out of the process list and the shell history; its trailing newline is not part of it.
enum TokenSource {
    static let fileVariable = "RUNWARDEN_TOKEN_FILE"

    static func resolve(
        token: String?, tokenFile: String?, environmentNames: [String], settings: Settings = Settings()
    ) throws -> String? {
        func present(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        // Not `settings.value`: a flag and a file flag together are an error, not an order.
        switch (present(token), present(tokenFile)) {
        case (.some, .some): throw ValidationError("give --token or --token-file, not both")
        case (.some(let token), nil): return token
        case (nil, .some(let path)): return try read(path)
        case (nil, nil): break
        }
        let fromVariable = environmentNames.lazy.compactMap(settings.variable).first
        switch (fromVariable, settings.variable(fileVariable)) {
        case (.some, .some):
            throw ValidationError("both \(environmentNames.joined(separator: "/")) and \(fileVariable) are set; unset one")
        case (.some(let token), nil): return token
        case (nil, .some(let path)): return try read(path)
        case (nil, nil): return nil
        }
    }

    /// The file's text without its trailing newline. A file others may read is used, with a
    /// warning: refusing it would break secrets mounted 0644 (Kubernetes' default).
    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the token file \(path)")
        }
        var token = String(decoding: data, as: UTF8.self)
        // Scalars, not Characters: "\r\n" is one Character and ends with neither alone.
        while let last = token.unicodeScalars.last, last == "\n" || last == "\r" { token.unicodeScalars.removeLast() }
        guard !token.isEmpty else { throw ValidationError("the token file \(path) is empty") }
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & (S_IRWXG | S_IRWXO) != 0 {
            FileHandle.standardError.write(
                Data("warning: the token file \(path) is readable by other users; chmod 600 it\n".utf8))
        }
        return token
    }
}
