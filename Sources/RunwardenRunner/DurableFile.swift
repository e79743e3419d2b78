import Foundation

/// Files the runner must find again after a crash (spooled reports, process-group records).
enum DurableFile {
    /// Write to a temporary name, fsync, then rename: a crash leaves either nothing or the whole file.
    static func save(_ data: Data, to url: URL) throws {
        let temporary = url.appendingPathExtension("partial")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw DurableFileError.cannotWrite(url.path, errno) }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(descriptor) == 0 else { throw DurableFileError.cannotWrite(url.path, errno) }
        guard rename(temporary.path, url.path) == 0 else { throw DurableFileError.cannotWrite(url.path, errno) }
    }
}

enum DurableFileError: Error, CustomStringConvertible {
    case cannotWrite(String, Int32)
    var description: String {
        switch self {
        case .cannotWrite(let path, let code): "cannot write \(path): \(String(cString: strerror(code)))"
        }
    }
}
