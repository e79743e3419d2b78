import Testing
import RunwardenCore

@Suite("needs graph")
struct NeedsGraphTests {
    @Test func aDiamondHasNoErrors() {
        let tasks = [task("a"), task("b", needs: ["a"]), task("c", needs: ["a"]), task("d", needs: ["b", "c"])]
        #expect(NeedsGraph.validate(tasks).isEmpty)
    }

    @Test func tasksWithoutNeedsHaveNoErrors() {
        #expect(NeedsGraph.validate([task("a"), task("b")]).isEmpty)
    }

    @Test func aDuplicateNameIsReportedOnTheLaterTaskNamingTheFirst() {
        let errors = NeedsGraph.validate([task("a"), task("b"), task("a")])
        #expect(errors == [FieldError("tasks[2].name", "duplicates the name of tasks[0]: \"a\"")])
    }

    @Test func aSelfNeedIsReportedOnTheTasksNeeds() {
        let errors = NeedsGraph.validate([task("a"), task("b", needs: ["b"])])
        #expect(errors.map(\.field) == ["tasks[1].needs"])
        #expect(errors.first?.message.contains("itself") == true)
    }

    @Test func aNeedNamingNoTaskIsReported() {
        let errors = NeedsGraph.validate([task("a"), task("b", needs: ["a", "ghost"])])
        #expect(errors.map(\.field) == ["tasks[1].needs"])
        #expect(errors.first?.message.contains("\"ghost\"") == true)
    }

    @Test func theSameNeedTwiceIsReported() {
        let errors = NeedsGraph.validate([task("a"), task("b", needs: ["a", "a"])])
        #expect(errors.map(\.field) == ["tasks[1].needs"])
        #expect(errors.first?.message.contains("twice") == true)
    }

    @Test func aTwoTaskCycleIsReportedWithItsPath() {
        let errors = NeedsGraph.validate([task("a", needs: ["b"]), task("b", needs: ["a"])])
        #expect(errors == [FieldError("tasks[0].needs", "forms a cycle: a → b → a")])
    }

    @Test func aCycleBehindAnAcyclicPartIsFound() {
        let tasks = [
            task("root"), task("x", needs: ["root"]), task("p", needs: ["x", "r"]), task("q", needs: ["p"]),
            task("r", needs: ["q"]),
        ]
        let errors = NeedsGraph.validate(tasks)
        #expect(errors.count == 1)
        #expect(errors.first?.message.hasPrefix("forms a cycle: ") == true)
        #expect(errors.first?.message.contains("root") == false)
        #expect(errors.first?.message.contains("x →") == false)
    }

    @Test func aCycleIsNotCheckedWhileOtherNeedsErrorsExist() {
        let errors = NeedsGraph.validate([task("a", needs: ["b"]), task("b", needs: ["a", "ghost"])])
        #expect(errors.map(\.field) == ["tasks[1].needs"])
        #expect(errors.allSatisfy { !$0.message.contains("cycle") })
    }

    @Test func aMaximalTaskChainHasNoErrors() {
        let count = RunDefinition.defaultMaxTasks
        let tasks = (0..<count).map { task("t\($0)", needs: $0 == 0 ? [] : ["t\($0 - 1)"]) }
        #expect(NeedsGraph.validate(Array(tasks.reversed())).isEmpty)
    }

    @Test func aMaximalTaskCycleIsFoundWithoutExhaustingTheStack() {
        let count = RunDefinition.defaultMaxTasks
        let tasks = (0..<count).map { task("t\($0)", needs: ["t\(($0 + 1) % count)"]) }
        let errors = NeedsGraph.validate(tasks)
        #expect(errors.count == 1)
        #expect(errors.first?.field == "tasks[0].needs")
        #expect(errors.first?.message.hasSuffix("t\(count - 1) → t0") == true)
    }
}
