import Hummingbird
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose request head does not arrive in time (`--header-timeout`, the
/// slowloris defence). Hummingbird's own idle timeout only counts complete HTTP parts, so a
/// client trickling one header byte at a time would hold a connection forever.
///
/// The clock starts when the connection opens (a TLS handshake counts against it) and, on a
/// kept-alive connection, at the first byte of the next request — an idle keep-alive connection
/// is the idle timeout's business, not this one's. It stops when the head has been decoded.
///
/// Two handlers share one state: `RawBytesWatcher` sits first in the pipeline and sees every
/// byte as it arrives; `HeadWatcher` sits after the HTTP decoder and sees heads and the end of
/// each response. Both run on the channel's event loop.
final class RequestHeadDeadline {
    private enum State {
        /// Between requests, with nothing of the next one received yet.
        case idle
        /// Bytes of a request head are arriving (or the connection just opened).
        case waitingForHead(Scheduled<Void>?)
        /// A request is being handled; its body and response have their own limits.
        case inRequest
    }

    private let timeout: TimeAmount
    private var state = State.waitingForHead(nil)
    private var requestsInProgress = 0

    init(timeout: TimeAmount) { self.timeout = timeout }

    /// The handlers for one connection, in the order `HTTP1Channel` wants additional handlers.
    static func handlers(timeout: Duration) -> [any RemovableChannelHandler] {
        let deadline = RequestHeadDeadline(timeout: .nanoseconds(timeout.saturatedNanoseconds))
        return [HeadWatcher(deadline: deadline)]
    }

    fileprivate func connectionOpened(_ context: ChannelHandlerContext) {
        guard case .waitingForHead(nil) = state else { return }
        arm(context)
    }

    fileprivate func bytesArrived(_ context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        arm(context)
    }

    fileprivate func headDecoded() {
        if case .waitingForHead(let timer) = state { timer?.cancel() }
        requestsInProgress += 1
        state = .inRequest
    }

    fileprivate func responseEnded() {
        requestsInProgress = max(0, requestsInProgress - 1)
        if requestsInProgress == 0, case .inRequest = state { state = .idle }
    }

    fileprivate func closed() {
        if case .waitingForHead(let timer) = state { timer?.cancel() }
        state = .inRequest
    }

    private func arm(_ context: ChannelHandlerContext) {
        let channel = context.channel
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            channel.close(promise: nil)
        }
        state = .waitingForHead(timer)
    }

    /// First in the pipeline: notices the first byte of a request, before any decoding.
    final class RawBytesWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        let deadline: RequestHeadDeadline

        init(deadline: RequestHeadDeadline) { self.deadline = deadline }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            deadline.bytesArrived(context)
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            deadline.closed()
            context.fireChannelInactive()
        }
    }

    /// After the HTTP decoder: a decoded head stops the clock, the end of the last response
    /// lets the next request's first byte start it again. Puts `RawBytesWatcher` in front of
    /// the pipeline when it is added (Hummingbird only lets us add handlers after the decoder).
    final class HeadWatcher: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        let deadline: RequestHeadDeadline

        init(deadline: RequestHeadDeadline) { self.deadline = deadline }

        func handlerAdded(context: ChannelHandlerContext) {
            try? context.pipeline.syncOperations.addHandler(RawBytesWatcher(deadline: deadline), position: .first)
            if context.channel.isActive { deadline.connectionOpened(context) }
        }

        func channelActive(context: ChannelHandlerContext) {
            deadline.connectionOpened(context)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head = unwrapInboundIn(data) { deadline.headDecoded() }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) { deadline.responseEnded() }
            context.write(data, promise: promise)
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating instead of trapping for durations past ±292 years.
    var saturatedNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, overflowAgain) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowAgain ? (seconds < 0 ? .min : .max) : total
    }
}
