import Dispatch
import Foundation
import Synchronization

/// A throwaway PostgreSQL cluster for tests: `initdb` in a temp folder, the postmaster started
/// as a child process on a free loopback port (as the `postgres` user when the tests run as
/// root, since PostgreSQL refuses to run as root), one fresh database per caller, stopped when
/// the test process exits. The postmaster is started directly rather than through `pg_ctl`,
/// whose daemon would inherit the descriptor Foundation's `Process` watches and make
/// `waitUntilExit()` hang. It never skips: when PostgreSQL cannot start, `database()` throws
/// and the test fails. Blocking process calls run on a dispatch queue, not on the cooperative
/// thread pool.
public enum PostgresTestCluster {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A new empty database, as a `postgres://` URL.
    public static func database() async throws -> String {
        let cluster = try await shared.value
        let name = "rw_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        try await blocking {
            try run(cluster.bin + "/psql", ["-h", "127.0.0.1", "-p", String(cluster.port), "-U", "postgres", "-d", "postgres",
                                            "-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE \(name)"], as: nil)
        }
        return "postgres://postgres@127.0.0.1:\(cluster.port)/\(name)"
    }

    /// Runs SQL as the superuser against the `postgres` database of the test cluster: for
    /// tests that take a database away from a server and give it back.
    public static func superuserSQL(_ sql: String) async throws {
        let cluster = try await shared.value
        try await blocking {
            try run(cluster.bin + "/psql", ["-h", "127.0.0.1", "-p", String(cluster.port), "-U", "postgres", "-d", "postgres",
                                            "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], as: nil)
        }
    }

    struct Cluster: Sendable {
        var bin: String
        var port: Int
    }

    private static let shared = Task<Cluster, any Error> { try await blocking { try start() } }
    private static let stopCommand = Mutex<(pgCtl: String, data: String, user: String?, root: String)?>(nil)
    /// The postmaster's `Process`, kept for the life of the test process.
    private static let server = Mutex<Process?>(nil)

    private static func blocking<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    private static func start() throws -> Cluster {
        guard let bin = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/14/bin"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") })
        else { throw Failure(description: "PostgreSQL server binaries not found (apt-get install postgresql-15)") }

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("runwarden-store-pg-\(UUID().uuidString)").path
        let data = root + "/data"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // PostgreSQL refuses to run as root.
        let user: String? = getuid() == 0 ? "postgres" : nil
        if user != nil { try run("/bin/chown", ["-R", "postgres", root], as: nil) }
        try run(bin + "/initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], as: user)

        let port = try freePort()
        let server = Process()
        let command = [bin + "/postgres", "-D", data, "-p", String(port), "-k", root, "-c", "listen_addresses=127.0.0.1",
                       "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=300"]
        if let user {
            server.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            server.arguments = ["-u", user, "--"] + command
        } else {
            server.executableURL = URL(fileURLWithPath: command[0])
            server.arguments = Array(command.dropFirst())
        }
        let logPath = root + "/server.log"
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw Failure(description: "cannot create \(logPath)")
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        server.standardInput = FileHandle.nullDevice
        server.standardOutput = log
        server.standardError = log
        server.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
        try server.run()
        Self.server.withLock { $0 = server }
        stopCommand.withLock { $0 = (bin + "/pg_ctl", data, user, root) }
        atexit { PostgresTestCluster.stop() }

        let deadline = Date().addingTimeInterval(60)
        while (try? run(bin + "/pg_isready", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-q"], as: nil)) == nil {
            guard Date() < deadline else {
                let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                throw Failure(description: "PostgreSQL did not start on 127.0.0.1:\(port) within 60 s: \(text)")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return Cluster(bin: bin, port: port)
    }

    private static func stop() {
        guard let command = stopCommand.withLock({ $0 }) else { return }
        try? run(command.pgCtl, ["-D", command.data, "-m", "immediate", "stop"], as: command.user)
        try? FileManager.default.removeItem(atPath: command.root)
    }

    /// Runs a command that leaves no process behind to completion; throws on failure.
    private static func run(_ executable: String, _ arguments: [String], as user: String?) throws {
        let process = Process()
        if let user {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", user, "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) failed: \(text)")
        }
    }

    /// A port the kernel just handed out on 127.0.0.1 (and took back).
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else { throw Failure(description: "bind() failed") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
