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

    /// Runs SQL as the superuser against `database` (a name; by default `postgres`) of the test
    /// cluster: for tests that take a database away from a server and give it back, or send a
    /// NOTIFY of their own.
    public static func superuserSQL(_ sql: String, database: String = "postgres") async throws {
        let cluster = try await shared.value
        try await blocking {
            try run(cluster.bin + "/psql", ["-h", "127.0.0.1", "-p", String(cluster.port), "-U", "postgres", "-d", database,
                                            "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], as: nil)
        }
    }

    struct Cluster: Sendable {
        var bin: String
        var port: Int
    }

    private static let shared = Task<Cluster, any Error> { try await blocking { try start() } }
    private static let stopCommand = Mutex<(pgCtl: String, data: String, user: String?, root: String)?>(nil)
    /// The postmaster, kept for the life of the test process.
    private static let server = Mutex<ChildProcess?>(nil)

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

        let port = try freeLoopbackPort()  // postgres cannot report a port it picked itself
        let command = [bin + "/postgres", "-D", data, "-p", String(port), "-k", root, "-c", "listen_addresses=127.0.0.1",
                       "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=300"]
        let (executable, arguments) = asUser(user, command)
        let logPath = root + "/server.log"
        let server = try ChildProcess(executable, arguments, outputTo: URL(fileURLWithPath: logPath), directory: URL(fileURLWithPath: "/tmp"))
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
        let (command, commandArguments) = asUser(user, [executable] + arguments)
        let result = try ChildProcess.runBlocking(command, commandArguments, directory: URL(fileURLWithPath: "/tmp"))
        guard result.status == 0 else {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) failed: \(result.output)")
        }
    }

    /// `command` run as `user` through runuser (PostgreSQL refuses root), or as it is.
    private static func asUser(_ user: String?, _ command: [String]) -> (String, [String]) {
        guard let user else { return (command[0], Array(command.dropFirst())) }
        return ("/usr/sbin/runuser", ["-u", user, "--"] + command)
    }
}
