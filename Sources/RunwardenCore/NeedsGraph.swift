/// Checks the `needs` graph of a run: unique task names, needs that name tasks of the same
/// run, no task needing itself or the same task twice, and no cycle.
public enum NeedsGraph {
    public static func validate(_ tasks: [TaskSpec]) -> [FieldError] {
        var errors: [FieldError] = []
        var indexByName: [String: Int] = [:]
        for (index, task) in tasks.enumerated() {
            if let first = indexByName[task.name] {
                errors.append(FieldError("tasks[\(index)].name", "duplicates the name of tasks[\(first)]: \"\(task.name)\""))
            } else {
                indexByName[task.name] = index
            }
        }
        for (index, task) in tasks.enumerated() {
            var seen: Set<String> = []
            for need in task.needs {
                let field = "tasks[\(index)].needs"
                if need == task.name {
                    errors.append(FieldError(field, "task \"\(task.name)\" cannot need itself"))
                } else if indexByName[need] == nil {
                    errors.append(FieldError(field, "names no task of this run: \"\(need)\""))
                } else if !seen.insert(need).inserted {
                    errors.append(FieldError(field, "names \"\(need)\" twice"))
                }
            }
        }
        guard errors.isEmpty else { return errors }
        if let cycle = findCycle(tasks, indexByName: indexByName) {
            let names = cycle.map { tasks[$0].name } + [tasks[cycle[0]].name]
            errors.append(FieldError("tasks[\(cycle[0])].needs", "forms a cycle: " + names.joined(separator: " → ")))
        }
        return errors
    }

    /// Iterative depth-first search with colours (a 5,000-task chain must not exhaust a stack);
    /// returns the task indices of one cycle, if any.
    static func findCycle(_ tasks: [TaskSpec], indexByName: [String: Int]) -> [Int]? {
        enum Colour { case white, grey, black }
        var colour = [Colour](repeating: .white, count: tasks.count)
        let edges = tasks.map { $0.needs.compactMap { indexByName[$0] } }

        for start in tasks.indices where colour[start] == .white {
            // Each frame is a node and the index of the next edge to follow from it.
            var stack: [(node: Int, edge: Int)] = [(start, 0)]
            colour[start] = .grey
            while let top = stack.last {
                if top.edge == edges[top.node].count {
                    colour[top.node] = .black
                    stack.removeLast()
                    continue
                }
                stack[stack.count - 1].edge += 1
                let next = edges[top.node][top.edge]
                switch colour[next] {
                case .grey:
                    let path = stack.map(\.node)
                    return Array(path[path.lastIndex(of: next)!...])
                case .white:
                    colour[next] = .grey
                    stack.append((next, 0))
                case .black:
                    continue
                }
            }
        }
        return nil
    }
}
