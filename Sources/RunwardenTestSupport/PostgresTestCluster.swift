import Foundation
import Synchronization

/// A throwaway PostgreSQL 15 cluster for tests: `initdb` in a temp folder, started on a free
/// loopback port (as the `postgres` user when the tests run as root, since PostgreSQL refuses
/// to run as root), one fresh database per caller, stopped when the test process exits.
/// It never skips: if PostgreSQL cannot be started, `database()` throws and the test fails.
public enum PostgresTestCluster {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A new empty database on the shared cluster, as a `postgres://` URL.
    public static func database() async throws -> String {
        let cluster = try await shared.value
        let name = "rw_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        try run(cluster.bin + "/psql", ["-h", "127.0.0.1", "-p", String(cluster.port), "-U", "postgres", "-d", "postgres",
                                        "-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE \(name)"], as: nil)
        return "postgres://postgres@127.0.0.1:\(cluster.port)/\(name)"
    }

    struct Cluster: Sendable {
        var bin: String
        var dataDirectory: String
        var port: Int
    }

    static let shared = Task<Cluster, any Error> { try start() }

    static func start() throws -> Cluster {
        guard let bin = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/14/bin"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") })
        else { throw Failure(description: "PostgreSQL server binaries not found (apt-get install postgresql-15)") }

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("runwarden-pg-\(UUID().uuidString)").path
        let data = root + "/data"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let user: String? = getuid() == 0 ? "postgres" : nil
        if user != nil { try run("/bin/chown", ["-R", "postgres", root], as: nil) }

        try run(bin + "/initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], as: user)
        let port = try freePort()
        let options = "-p \(port) -k \(root) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200"
        try run(bin + "/pg_ctl", ["-D", data, "-l", root + "/server.log", "-o", options, "-w", "-t", "60", "start"], as: user)
        stopCommand.withLock { $0 = (bin + "/pg_ctl", data, user) }
        atexit { PostgresTestCluster.stop() }
        return Cluster(bin: bin, dataDirectory: data, port: port)
    }

    private static let stopCommand = Mutex<(pgCtl: String, data: String, user: String?)?>(nil)

    static func stop() {
        guard let command = stopCommand.withLock({ $0 }) else { return }
        try? run(command.pgCtl, ["-D", command.data, "-m", "immediate", "stop"], as: command.user)
    }

    /// Runs a command to completion (as `user` through runuser when given); throws on failure.
    static func run(_ executable: String, _ arguments: [String], as user: String?) throws {
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
    static func freePort() throws -> Int {
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
