import Foundation
import RunwardenCore
import Synchronization

/// A task's output: everything goes to its log file, with the task's secret values masked as
/// `***` (SPEC §9: the file is what is shipped); the last bytes of stderr are kept in memory
/// for the error message of a failed task.
final class LogSink: Sendable {
    private struct State {
        var handle: FileHandle?
        var tail: [UInt8] = []
        /// One per stream: stdout and stderr interleave in the file, each cut in its own places.
        var stdoutMask: SecretMask
        var stderrMask: SecretMask
    }
    private let state: Mutex<State>
    private let tailBytes: Int

    init(url: URL, tailBytes: Int, secrets: some Sequence<String> = []) {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let mask = SecretMask(secrets: secrets)
        state = Mutex(State(handle: try? FileHandle(forWritingTo: url), stdoutMask: mask, stderrMask: mask))
        self.tailBytes = tailBytes
    }

    func write(_ bytes: UnsafeRawBufferPointer, isStderr: Bool) {
        state.withLock { state in
            let masked = isStderr ? state.stderrMask.mask(bytes) : state.stdoutMask.mask(bytes)
            Self.append(masked, isStderr: isStderr, to: &state, tailBytes: tailBytes)
        }
    }

    private static func append(_ bytes: [UInt8], isStderr: Bool, to state: inout State, tailBytes: Int) {
        guard !bytes.isEmpty else { return }
        try? state.handle?.write(contentsOf: Data(bytes))
        guard isStderr else { return }
        state.tail.append(contentsOf: bytes)
        if state.tail.count > tailBytes { state.tail.removeFirst(state.tail.count - tailBytes) }
    }

    /// The kept stderr bytes, cut to start at a whole line when possible.
    var stderrTail: String {
        state.withLock { state in
            var bytes = state.tail[...]
            if state.tail.count >= tailBytes, let newline = bytes.firstIndex(of: 0x0A) { bytes = bytes[(newline + 1)...] }
            return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Writes what the masks held back (no secret can complete any more), then closes the file.
    func close() {
        state.withLock { state in
            Self.append(state.stdoutMask.finish(), isStderr: false, to: &state, tailBytes: tailBytes)
            Self.append(state.stderrMask.finish(), isStderr: true, to: &state, tailBytes: tailBytes)
            try? state.handle?.close()
            state.handle = nil
        }
    }
}
