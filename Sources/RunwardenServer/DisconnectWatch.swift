import NIOCore

/// Notices a client that went away while its request waits (a long-poll claim).
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
