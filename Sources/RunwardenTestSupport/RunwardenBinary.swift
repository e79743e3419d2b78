import Foundation

/// The built `runwarden` executable, next to the running test bundle: end-to-end tests start
/// servers and runners with it, and the dashboard's browser test a real runner.
public let runwardenBinary: URL = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // Running from inside an .xctest bundle: the products sit beside the bundle.
    while directory.pathExtension == "xctest" || directory.lastPathComponent == "Contents" || directory.lastPathComponent == "MacOS" {
        directory.deleteLastPathComponent()
    }
    return directory.appendingPathComponent("runwarden")
}()
