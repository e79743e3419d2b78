import Foundation
import RunwardenCore
import Testing

@testable import RunwardenStore

/// Task logs in every backend (SPEC §9): chunks at offsets, resends, gaps, who may write, the cap,
/// retention.
@Suite("LogStore conformance")
struct LogStoreTests {
    static func chunk(_ taskID: String, _ text: String, at offset: Int64, attempt: Int = 1, runner: String? = "r", final: Bool = false)
        -> LogChunk
    {
        LogChunk(taskID: taskID, attempt: attempt, runner: runner, offset: offset, bytes: Array(text.utf8), final: final)
    }

    static func text(_ slice: LogSlice?) -> String { String(decoding: slice?.bytes ?? [], as: UTF8.self) }

    @Test("chunks append in order; a chunk sent again is stored once; a gap is refused with the expected offset", arguments: Backend.all)
    func appendsInOrder(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        _ = try await create(store, [task("a")])
        let taskID = try #require(try await store.claim(runner: "r", labels: [], now: at(1))).value.id
        let cap = LogCap(maxBytes: 1 << 20)

        #expect(try await store.appendLog(Self.chunk(taskID, "line 1\n", at: 0), cap: cap, now: at(2))?.log.received == 7)
        let again = try #require(try await store.appendLog(Self.chunk(taskID, "line 1\n", at: 0), cap: cap, now: at(2)))
        #expect(again.stored == 0 && again.log.received == 7)
        do {
            _ = try await store.appendLog(Self.chunk(taskID, "later\n", at: 20), cap: cap, now: at(3))
            Issue.record("a gap was accepted")
        } catch let error as RunwardenError {
            #expect(error.code == .logOffsetMismatch)
            #expect(error.details == [FieldError("offset", "expected 7")])
        }
        // Overlapping the stored end: only the new part is kept.
        let overlap = try #require(try await store.appendLog(Self.chunk(taskID, "e 1\nline 2\n", at: 3), cap: cap, now: at(4)))
        #expect(overlap.stored == 7 && overlap.log.received == 14)

        #expect(Self.text(try await store.readLog(taskID: taskID, attempt: nil, offset: 0, limit: 100)) == "line 1\nline 2\n")
        #expect(Self.text(try await store.readLog(taskID: taskID, attempt: 1, offset: 9, limit: 100)) == "ne 2\n")
        #expect(Self.text(try await store.readLog(taskID: taskID, attempt: 1, offset: 0, limit: 3)) == "lin")
        #expect(try await store.readLog(taskID: taskID, attempt: 1, offset: 14, limit: 100)?.bytes == [])
        #expect(try await store.readLog(taskID: "task_unknown", attempt: nil, offset: 0, limit: 100) == nil)
        #expect(try await store.appendLog(Self.chunk("task_unknown", "x", at: 0), cap: cap, now: at(5)) == nil)

        // The final chunk closes the log: more bytes after it are refused.
        let closed = try #require(try await store.appendLog(Self.chunk(taskID, "", at: 14, final: true), cap: cap, now: at(6)))
        #expect(closed.log.final)
        await #expect(throws: RunwardenError.self) {
            try await store.appendLog(Self.chunk(taskID, "more\n", at: 14), cap: cap, now: at(7))
        }
    }

    @Test("only the runner holding an attempt that was handed out may write its log", arguments: Backend.all)
    func onlyTheHolderWrites(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        let run = try await create(store, [task("a"), task("b")])
        let claimed = try #require(try await store.claim(runner: "r", labels: [], now: at(1))).value.id
        let queued = try #require(run.tasks.first { $0.id != claimed }).id
        let cap = LogCap(maxBytes: 1 << 20)
        for (chunk, why) in [
            (Self.chunk(claimed, "x", at: 0, runner: "other"), "another runner"),
            (Self.chunk(claimed, "x", at: 0, attempt: 2), "an attempt never handed out"),
            (Self.chunk(queued, "x", at: 0), "a task nobody claimed"),
        ] {
            do {
                _ = try await store.appendLog(chunk, cap: cap, now: at(2))
                Issue.record("accepted a chunk from \(why)")
            } catch let error as TransitionError {
                guard case .taskNotClaimed = error else { throw error }
            }
        }
        #expect(try await store.readLog(taskID: claimed, attempt: 1, offset: 0, limit: 10)?.log == nil, "nothing was kept")
    }

    @Test("past the cap the head and the newest bytes are kept and the middle counted", arguments: Backend.all)
    func capKeepsHeadAndTail(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        _ = try await create(store, [task("a")])
        let taskID = try #require(try await store.claim(runner: "r", labels: [], now: at(1))).value.id
        let cap = LogCap(maxBytes: 100)  // 50 bytes of head, 50 of the newest
        var sent = ""
        for index in 0..<12 {
            let piece = String(repeating: Character(UnicodeScalar(UInt8(65 + index))), count: 30)  // AAAA…, BBBB…
            _ = try await store.appendLog(Self.chunk(taskID, piece, at: Int64(sent.utf8.count)), cap: cap, now: at(2))
            sent += piece
        }
        let head = try #require(try await store.readLog(taskID: taskID, attempt: 1, offset: 0, limit: 1000))
        #expect(Self.text(head) == String(sent.prefix(50)), "a read stops where the dropped middle starts")
        #expect(head.log?.received == 360)
        #expect(head.log?.truncated == 260)
        let tail = try #require(try await store.readLog(taskID: taskID, attempt: 1, offset: head.end, limit: 1000))
        #expect(tail.start == 310, "a read from inside the dropped middle starts at the first kept byte")
        #expect(Self.text(tail) == String(sent.suffix(50)))
    }

    @Test("log retention removes a log's bytes and keeps knowing it had one", arguments: Backend.all)
    func retentionExpiresLogs(backend: Backend) async throws {
        let (store, _) = try await backend.makeStore()
        _ = try await create(store, [task("a")])
        let taskID = try #require(try await store.claim(runner: "r", labels: [], now: at(1))).value.id
        _ = try await store.appendLog(Self.chunk(taskID, "old\n", at: 0), cap: LogCap(maxBytes: 1000), now: at(2))
        #expect(try await store.expireLogs(updatedBefore: at(2), limit: 10, now: at(50)) == 0, "written at 2: not before 2")
        #expect(try await store.expireLogs(updatedBefore: at(3), limit: 10, now: at(50)) == 1)
        #expect(try await store.expireLogs(updatedBefore: at(100), limit: 10, now: at(51)) == 0, "once only")
        do {
            _ = try await store.readLog(taskID: taskID, attempt: 1, offset: 0, limit: 10)
            Issue.record("an expired log was read")
        } catch let error as RunwardenError {
            #expect(error.code == .logsExpired)
        }
        #expect(try await store.run(id: try #require(try await store.task(id: taskID)).record.run.id) != nil, "the run outlives its log")
    }
}
