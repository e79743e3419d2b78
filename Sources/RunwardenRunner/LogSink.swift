import Foundation
import Synchronization

/// A task's output: everything goes to its log file; the last bytes of stderr are kept in
/// memory for the error message of a failed task.
final class LogSink: Sendable {
    private struct State {
        var handle: FileHandle?
        var tail: [UInt8] = []
    }
    private let state: Mutex<State>
    private let tailBytes: Int

    init(url: URL, tailBytes: Int) {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        state = Mutex(State(handle: try? FileHandle(forWritingTo: url)))
        self.tailBytes = tailBytes
    }

    func write(_ bytes: UnsafeRawBufferPointer, isStderr: Bool) {
        state.withLock { state in
            try? state.handle?.write(contentsOf: Data(bytes))
            guard isStderr else { return }
            state.tail.append(contentsOf: bytes)
            if state.tail.count > tailBytes { state.tail.removeFirst(state.tail.count - tailBytes) }
        }
    }

    /// The kept stderr bytes, cut to start at a whole line when possible.
    var stderrTail: String {
        state.withLock { state in
            var bytes = state.tail[...]
            if state.tail.count >= tailBytes, let newline = bytes.firstIndex(of: 0x0A) { bytes = bytes[(newline + 1)...] }
            return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func close() {
        state.withLock { state in
            try? state.handle?.close()
            state.handle = nil
        }
    }
}
