import Testing

@testable import RunwardenServer

/// The hub's timeouts share one timer: every waiter still returns when its own wait runs out,
/// whatever order the waits were parked in, and a notify wakes its topic at once.
@Suite("Change hub")
struct ChangeHubTests {
    @Test("Waiters parked longest-first each return when their own timeout runs out")
    func timeoutsFireInDeadlineOrder() async {
        let hub = ChangeHub()
        let start = ContinuousClock.now
        // Parked longest first: each shorter wait must move the one timer earlier.
        let timeouts: [Duration] = [.milliseconds(900), .milliseconds(600), .milliseconds(300)]
        let returned = await withTaskGroup(of: (Duration, Duration).self) { group in
            for (index, timeout) in timeouts.enumerated() {
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(20 * index))
                    await hub.wait(for: .run("run-\(index)"), after: 0, timeout: timeout)
                    return (timeout, ContinuousClock.now - start)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(returned.count == 3)
        for (timeout, elapsed) in returned {
            #expect(elapsed >= timeout, "a \(timeout) wait returned after \(elapsed)")
            #expect(elapsed < timeout + .milliseconds(700), "a \(timeout) wait returned after \(elapsed)")
        }
        #expect(await hub.parkedCount == 0)
    }

    @Test("A notify wakes its topic's waiters at once and leaves other topics parked")
    func notifyWakesOnlyItsTopic() async throws {
        let hub = ChangeHub()
        let start = ContinuousClock.now
        async let woken: Duration = {
            await hub.wait(for: .run("a"), after: 0, timeout: .seconds(30))
            return ContinuousClock.now - start
        }()
        let other = Task { await hub.wait(for: .run("b"), after: 0, timeout: .seconds(30)) }
        while await hub.parkedCount < 2 { try await Task.sleep(for: .milliseconds(5)) }
        await hub.notify([.run("a")])

        #expect(await woken < .seconds(5))
        #expect(await hub.parkedCount == 1)
        other.cancel()
        await other.value
        #expect(await hub.parkedCount == 0)
    }

    @Test("A fired interrupt wakes the waiter that carries it, and a wait begun after it returns at once")
    func interruptEndsTheWait() async throws {
        let hub = ChangeHub()
        let interrupt = WaitInterrupt()
        let start = ContinuousClock.now
        let waiter = Task {
            await WaitInterrupt.$current.withValue(interrupt) {
                await hub.wait(for: .claims, after: 0, timeout: .seconds(30))
            }
        }
        while await hub.parkedCount < 1 { try await Task.sleep(for: .milliseconds(5)) }
        interrupt.fire()
        await waiter.value
        #expect(ContinuousClock.now - start < .seconds(5))

        let again = ContinuousClock.now
        await WaitInterrupt.$current.withValue(interrupt) { await hub.wait(for: .claims, after: 0, timeout: .seconds(30)) }
        #expect(ContinuousClock.now - again < .seconds(1))
        #expect(await hub.parkedCount == 0)
    }

    @Test("Timeouts of waiters woken early do not pile up")
    func staleTimeoutsAreSwept() async throws {
        let hub = ChangeHub()
        for round in 0..<6 {
            let topic = ChangeHub.Topic.run("round-\(round)")
            let waiters = (0..<1_000).map { _ in Task { await hub.wait(for: topic, after: 0, timeout: .seconds(60)) } }
            while await hub.parkedCount < 1_000 { try await Task.sleep(for: .milliseconds(5)) }
            await hub.notify([topic])
            for waiter in waiters { await waiter.value }
        }
        // 6,000 waits of 60 s each, all woken at once: without the sweep all 6,000 stay queued.
        #expect(await hub.parkedCount == 0)
        #expect(await hub.scheduledTimeouts <= 1_024 + 1_000)
    }
}
