import Foundation

/// Where tests keep their files: one directory per test process under the system temp
/// directory, removed when the process exits — a suite run leaves nothing behind (it used to
/// leave a directory per test, tens of MB each for the end-to-end ones). Set
/// `RUNWARDEN_KEEP_TEST_FILES=1` to keep them and look at a failure's databases and logs.
public enum TestScratch {
    public static let root: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("runwarden-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        if ProcessInfo.processInfo.environment["RUNWARDEN_KEEP_TEST_FILES"] == nil {
            atexit { try? FileManager.default.removeItem(at: TestScratch.root) }
        }
        return root
    }()

    /// A fresh, empty directory named `prefix-<uuid>` under `root`.
    public static func directory(_ prefix: String) throws -> URL {
        let directory = root.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}
