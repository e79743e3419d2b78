import NIOCore

/// Notices a client that went away while its request waits (a long-poll).
///
/// Hummingbird does not cancel a handler when its connection closes, and a claim that waits
/// on behalf of a dead runner would hand it a task nobody will run — costing a lease and a
/// retry. This handler sits first in the connection's pipeline and fires `onDisconnect` when
/// the peer closes its side (a killed process's socket is closed by its kernel).
///
/// Not Sendable: it is made, added, run and removed on the channel's event loop only, so its
/// `onDisconnect` needs no lock (and NIO checks the loop on every sync operation).
final class DisconnectWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private var onDisconnect: (@Sendable () -> Void)?

    private init(onDisconnect: @escaping @Sendable () -> Void) {
        self.onDisconnect = onDisconnect
    }

    /// A request that may wait (`wait` > 0: a long-poll): its waiting ends early when the
    /// client goes away, so a dead client does not hold a handler (and its memory) for the
    /// rest of its `wait`. (`ChangeHub.wait` also ends on graceful shutdown by itself.)
    static func longPoll<Value: Sendable>(
        on channel: any Channel, wait: Duration, _ operation: @Sendable () async throws -> Value
    ) async throws -> Value {
        guard wait > .zero else { return try await operation() }
        let interrupt = WaitInterrupt()
        // Removed by name, so no reference to the handler leaves its loop; unique per request
        // (the interrupt lives until the removal), as NIO removes the first of equal names.
        let name = "runwarden.disconnect-watch.\(UInt(bitPattern: ObjectIdentifier(interrupt).hashValue))"
        try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                DisconnectWatch { interrupt.fire() }, name: name, position: .first)
        }.get()
        defer { _ = channel.pipeline.removeHandler(name: name) }
        return try await WaitInterrupt.$current.withValue(interrupt) { try await operation() }
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
