import NIOCore
import ServiceLifecycle

/// Notices a client that went away while its request waits (a long-poll).
///
/// Hummingbird does not cancel a handler when its connection closes, and a claim that waits
/// on behalf of a dead runner would hand it a task nobody will run — costing a lease and a
/// retry. This handler sits first in the connection's pipeline and fires `onDisconnect` when
/// the peer closes its side (a killed process's socket is closed by its kernel).
final class DisconnectWatch: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    // Touched only on the channel's event loop.
    private var onDisconnect: (@Sendable () -> Void)?

    private init(onDisconnect: @escaping @Sendable () -> Void) {
        self.onDisconnect = onDisconnect
    }

    /// Runs `operation`, cancelling it if the client disconnects first.
    static func cancelOnDisconnect<Value: Sendable>(
        of channel: any Channel, _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let work = Task { try await operation() }
        let watch = DisconnectWatch { work.cancel() }
        try? await channel.pipeline.addHandler(watch, position: .first).get()
        defer { _ = channel.pipeline.removeHandler(watch) }
        return try await withTaskCancellationHandler {
            try await work.value
        } onCancel: {
            work.cancel()
        }
    }

    /// A request that may wait (`wait` > 0: a long-poll): its waiting ends early when the
    /// client goes away — so a dead client does not hold a handler for the rest of its
    /// `wait` — or when the server starts shutting down, so a graceful shutdown does not sit
    /// out every parked long-poll. `operation` gets the wait to use; once cut short (its task
    /// cancelled, which also fails its database reads), it runs again with no wait, so a client
    /// still there gets what there is now.
    static func longPoll<Value: Sendable>(
        on channel: any Channel, wait: Duration, _ operation: @escaping @Sendable (Duration) async throws -> Value
    ) async throws -> Value {
        guard wait > .zero else { return try await operation(.zero) }
        do {
            return try await cancelWhenGracefulShutdown {
                try await cancelOnDisconnect(of: channel) { try await operation(wait) }
            }
        } catch is CancellationError where !Task.isCancelled {
            return try await operation(.zero)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fire()
        context.fireChannelInactive()
    }

    private func fire() {
        onDisconnect?()
        onDisconnect = nil
    }
}
