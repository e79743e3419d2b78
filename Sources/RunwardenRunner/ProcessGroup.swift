import Foundation

/// A task's process group. The task's process leads it (the runner starts it with its own
/// group), and everything the task starts stays in it unless it deliberately leaves — so
/// signalling the group reaches the task, its children, and children it left behind.
///
/// Linux does not hand out a PID again while a group still uses it as its id, so signalling
/// a group whose leader has exited and been reaped still reaches the leader's own leftovers.
struct ProcessGroup: Sendable, Equatable {
    let id: pid_t

    /// No process is left in the group (a zombie not yet reaped still counts).
    var isEmpty: Bool { kill(-id, 0) != 0 && errno == ESRCH }

    func signal(_ signal: Int32) {
        guard id > 1 else { return }  // never -1 (every process) or -0 (the runner's own group)
        _ = kill(-id, signal)
    }

    /// SIGTERM to the whole group, then SIGKILL to whatever is left after `grace`. Returns once
    /// the group is empty or SIGKILL was sent; a cancelled caller skips the rest of the grace.
    func stop(grace: Duration) async {
        guard id > 1, !isEmpty else { return }
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while !isEmpty, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if !isEmpty { signal(SIGKILL) }
    }
}
