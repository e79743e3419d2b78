import AsyncHTTPClient
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Sends the spans of runs and attempts (SPEC §11) to the OTLP/HTTP collector, batched: a
/// change only appends its spans here, and a request goes out every `interval`. On shutdown the
/// spans still queued are sent before the service returns. A span that cannot be sent is
/// dropped and counted in the log: tracing never holds a run up.
public final class RunSpanExporter: Service, Sendable {
    let tracesURL: String
    let serviceName: String
    let interval: Duration
    let logger: Logger
    /// Spans waiting past this many are dropped (a collector that is down must not grow memory).
    static let maxQueued = 4096
    static let maxBatch = 512
    private let queue = Mutex(Queue())

    private struct Queue {
        var spans: [RunSpan] = []
        var dropped = 0
    }

    public init(tracesURL: String, serviceName: String, interval: Duration = .seconds(1), logger: Logger) {
        self.tracesURL = tracesURL
        self.serviceName = serviceName
        self.interval = interval
        self.logger = logger
    }

    func enqueue(_ spans: [RunSpan]) {
        guard !spans.isEmpty else { return }
        queue.withLock { queue in
            let room = max(0, Self.maxQueued - queue.spans.count)
            queue.spans += spans.prefix(room)
            queue.dropped += max(0, spans.count - room)
        }
    }

    public func run() async throws {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(5))
        // A collector that refuses is one failed export, not seconds of reconnecting.
        configuration.connectionPool.retryConnectionEstablishment = false
        // Its own requests are not traced: every export would make a span for the next one.
        configuration.tracing.tracer = nil
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            await sendQueued(with: client)
        }
        await sendQueued(with: client)  // the spans of the last changes before shutdown
        try? await client.shutdown()
    }

    private func sendQueued(with client: HTTPClient) async {
        let (spans, dropped) = queue.withLock { queue in
            defer { queue = Queue() }
            return (queue.spans, queue.dropped)
        }
        if dropped > 0 { logger.warning("trace spans dropped: the queue was full", metadata: ["spans": "\(dropped)"]) }
        var start = 0
        while start < spans.count {
            let batch = Array(spans[start..<min(spans.count, start + Self.maxBatch)])
            start += batch.count
            // A collector that failed one batch is not waited for again in this round (nor at
            // shutdown): the rest are dropped.
            guard await send(batch, with: client) else {
                if start < spans.count { logger.warning("trace spans dropped", metadata: ["spans": "\(spans.count - start)"]) }
                return
            }
        }
    }

    /// Whether the collector took the batch.
    private func send(_ batch: [RunSpan], with client: HTTPClient) async -> Bool {
        var request = HTTPClientRequest(url: tracesURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: OTLPJSON.exportRequest(batch, serviceName: serviceName)))
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            guard (200..<300).contains(response.status.code) else {
                logger.warning("the trace collector refused run spans", metadata: ["status": "\(response.status.code)", "spans": "\(batch.count)"])
                return false
            }
            return true
        } catch {
            logger.warning("could not send run spans to the trace collector", metadata: ["error": "\(error)", "spans": "\(batch.count)"])
            return false
        }
    }
}
