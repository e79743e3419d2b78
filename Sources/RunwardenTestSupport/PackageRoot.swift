import Foundation

/// The package's own directory (this file is `Sources/RunwardenTestSupport/PackageRoot.swift`):
/// tests read docs, scripts and examples from it, and run its recipes.
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
