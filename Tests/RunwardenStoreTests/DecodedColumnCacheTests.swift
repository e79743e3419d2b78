import RunwardenCore
import RunwardenStore
import Testing

@Suite("Decoded column cache")
struct DecodedColumnCacheTests {
    @Test("A row whose text changed is decoded afresh, not answered from the cache")
    func changedTextIsDecodedAgain() throws {
        let cache = DecodedColumnCache<TaskState>(capacity: 4)
        var state = TaskState()
        state.attempt = 1
        let first = try cache.encode(state, row: "task-1")
        state.attempt = 2
        let second = try JSONColumn.encode(state)

        #expect(try cache.decode(first, row: "task-1").attempt == 1)
        #expect(try cache.decode(second, row: "task-1").attempt == 2)
        #expect(try cache.decode(first, row: "task-1").attempt == 1)
    }

    @Test("Two rows with different ids never answer for each other")
    func rowsAreKeptApart() throws {
        let cache = DecodedColumnCache<TaskState>(capacity: 4)
        var running = TaskState()
        running.status = .running
        let runningText = try cache.encode(running, row: "a")
        let queuedText = try JSONColumn.encode(TaskState())

        #expect(try cache.decode(queuedText, row: "a").status == .pending)
        #expect(try cache.decode(runningText, row: "b").status == .running)
    }

    @Test("Malformed text still fails to decode, cached id or not")
    func malformedTextThrows() throws {
        let cache = DecodedColumnCache<TaskState>(capacity: 4)
        _ = try cache.encode(TaskState(), row: "a")
        #expect(throws: (any Error).self) { try cache.decode("{not json", row: "a") }
    }

    @Test("Far more rows than the capacity all decode correctly")
    func evictionKeepsAnswersRight() throws {
        let cache = DecodedColumnCache<TaskState>(capacity: 8)
        var texts: [String] = []
        for attempt in 1...100 {
            var state = TaskState()
            state.attempt = attempt
            texts.append(try cache.encode(state, row: "task-\(attempt)"))
        }
        for (index, text) in texts.enumerated() {
            #expect(try cache.decode(text, row: "task-\(index + 1)").attempt == index + 1)
        }
    }
}
