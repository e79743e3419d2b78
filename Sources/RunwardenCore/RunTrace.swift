/// The W3C trace context of a run (SPEC §11), kept in its spec. A run outlives a process and
/// its attempts end on whichever node hears of it, so no span is held open: the ids are
/// stored here, and each span is sent whole, with its own start and end times, when its
/// attempt or the run ends. Ids are lowercase hex, as in a `traceparent` header.
public struct RunTrace: Sendable, Equatable, Codable {
    /// 32 hex digits: the caller's trace when `POST /v1/runs` carried a `traceparent`, else new.
    public var traceID: String
    /// 16 hex digits: the run's root span.
    public var spanID: String
    /// The caller's span, the parent of the run's root span; nil when the run began the trace.
    public var parentSpanID: String?
    /// The caller's sampling decision (always true for a trace the run began): an unsampled
    /// trace is passed on to tasks but no span of it is sent.
    public var sampled: Bool
    /// The caller's `tracestate`, passed on untouched.
    public var traceState: String?

    public init(traceID: String, spanID: String, parentSpanID: String? = nil, sampled: Bool = true, traceState: String? = nil) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.sampled = sampled
        self.traceState = traceState
    }

    // Pinned: the stored format inside the `spec` column.
    enum CodingKeys: String, CodingKey {
        case traceID, spanID, parentSpanID, sampled, traceState
    }
}
