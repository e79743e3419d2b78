import Crypto
import RunwardenCore
import W3CTraceContext

/// Reading and writing a run's trace context (SPEC §11) with swift-w3c-trace-context.
extension RunTrace {
    /// The longest `tracestate` passed on: W3C allows 32 members of up to 256 characters each,
    /// but a value past 512 characters may be dropped, and a header is the caller's to fill.
    static let maxTraceStateLength = 512

    /// A new run's trace: under the caller's span when `traceparent` is well formed, else a
    /// trace of its own. A malformed header is hostile input, not an error: it is ignored, and
    /// a malformed `tracestate` alone loses only the state.
    public static func begin(traceparent: String?, tracestate: String?) -> RunTrace {
        let root = SpanID.random().description
        guard let caller = caller(traceparent: traceparent, tracestate: tracestate) else {
            return RunTrace(traceID: TraceID.random().description, spanID: root)
        }
        return RunTrace(
            traceID: caller.traceID.description, spanID: root, parentSpanID: caller.spanID.description,
            sampled: caller.flags.contains(.sampled), traceState: caller.traceStateHeaderValue)
    }

    private static func caller(traceparent: String?, tracestate: String?) -> TraceContext? {
        guard let traceparent else { return nil }
        let state = tracestate.flatMap { $0.utf8.count <= maxTraceStateLength ? $0 : nil }
        if let state, let context = try? TraceContext(traceParentHeaderValue: traceparent, traceStateHeaderValue: state) {
            return context
        }
        return try? TraceContext(traceParentHeaderValue: traceparent)
    }

    /// The span id of a task's attempt: derived, not stored, so whichever node claims the task
    /// and whichever node hears it end agree on it without a write. A digest of the run's root
    /// span and the attempt, so attempts of different runs never share one.
    public func attemptSpanID(taskID: String, attempt: Int) -> String {
        let digest = SHA256.hash(data: Array("\(traceID)/\(spanID)/\(taskID)/\(attempt)".utf8))
        var bytes = Array(digest.prefix(8))
        if bytes.allSatisfy({ $0 == 0 }) { bytes[7] = 1 }  // all zeros is not a valid span id
        return SpanID(bytes: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7])).description
    }

    /// The `traceparent` and `tracestate` a task's attempt runs under (SPEC §11): its own
    /// span's id in the run's trace. Nil if the stored ids were ever unreadable.
    public func attemptContext(taskID: String, attempt: Int) -> (parent: String, state: String?)? {
        let flags = sampled ? "01" : "00"
        let header = "00-\(traceID)-\(attemptSpanID(taskID: taskID, attempt: attempt))-\(flags)"
        guard let context = try? TraceContext(traceParentHeaderValue: header, traceStateHeaderValue: traceState) else { return nil }
        return (context.traceParentHeaderValue, context.traceStateHeaderValue)
    }
}
