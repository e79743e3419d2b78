/// One rule a request body breaks, named by its JSON path (`tasks[1].needs`).
public struct FieldError: Sendable, Equatable, Error, Codable {
    public var field: String
    public var message: String
    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public enum CodingKeys: String, CodingKey, CaseIterable { case field, message }
}

/// Reads typed fields out of a JSON object while collecting every rule it breaks, so a client
/// learns all of its mistakes from one `422` instead of one per round trip.
public struct FieldReader {
    public private(set) var errors: [FieldError] = []
    public init() {}

    public mutating func fail(_ field: String, _ message: String) { errors.append(FieldError(field, message)) }

    /// The members of `value` when it is an object; records an error otherwise.
    /// Members not in `allowed` are reported, which catches typos such as `timeout` for `timeout_s`.
    public mutating func object(_ value: JSONValue, at path: String, allowed: Set<String>) -> JSONValue? {
        guard let members = value.objectMembers else {
            fail(path.isEmpty ? "body" : path, "must be an object, not \(value.typeName)")
            return nil
        }
        for member in members where !allowed.contains(member.key) {
            fail(join(path, member.key), "is not a known field")
        }
        return value
    }

    public mutating func string(
        _ object: JSONValue, _ key: String, at path: String, required: Bool = false, maxLength: Int = 1024
    ) -> String? {
        let field = join(path, key)
        guard let value = present(object, key, field, required) else { return nil }
        guard case .string(let text) = value else {
            fail(field, "must be a string, not \(value.typeName)")
            return nil
        }
        if text.isEmpty {
            fail(field, "must not be empty")
            return nil
        }
        if text.count > maxLength {
            fail(field, "must be at most \(maxLength) characters")
            return nil
        }
        return text
    }

    public mutating func integer(
        _ object: JSONValue, _ key: String, at path: String, minimum: Int, maximum: Int = Int(Int32.max)
    ) -> Int? {
        let field = join(path, key)
        guard let value = present(object, key, field, false) else { return nil }
        guard let number = Self.integerValue(value) else {
            fail(field, "must be an integer, not \(value.typeName == "number" ? "a fraction" : value.typeName)")
            return nil
        }
        guard number >= minimum else {
            fail(field, minimum == 1 ? "must be a positive integer" : "must be at least \(minimum)")
            return nil
        }
        guard number <= maximum else {
            fail(field, "must be at most \(maximum)")
            return nil
        }
        return number
    }

    public mutating func bool(_ object: JSONValue, _ key: String, at path: String) -> Bool? {
        let field = join(path, key)
        guard let value = present(object, key, field, false) else { return nil }
        guard case .bool(let flag) = value else {
            fail(field, "must be true or false, not \(value.typeName)")
            return nil
        }
        return flag
    }

    public mutating func stringList(_ object: JSONValue, _ key: String, at path: String) -> [String]? {
        let field = join(path, key)
        guard let value = present(object, key, field, false) else { return nil }
        guard case .array(let items) = value else {
            fail(field, "must be an array of strings, not \(value.typeName)")
            return nil
        }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item, !text.isEmpty else {
                fail("\(field)[\(index)]", "must be a non-empty string")
                continue
            }
            strings.append(text)
        }
        return strings.count == items.count ? strings : nil
    }

    public mutating func stringMap(_ object: JSONValue, _ key: String, at path: String) -> [String: String]? {
        let field = join(path, key)
        guard let value = present(object, key, field, false) else { return nil }
        guard let members = value.objectMembers else {
            fail(field, "must be an object of strings, not \(value.typeName)")
            return nil
        }
        var map: [String: String] = [:]
        for member in members {
            guard case .string(let text) = member.value else {
                fail(join(field, member.key), "must be a string, not \(member.value.typeName)")
                continue
            }
            map[member.key] = text
        }
        return map.count == members.count ? map : nil
    }

    /// The member's value; nil (with an error when required) if missing or JSON null.
    public mutating func present(_ object: JSONValue, _ key: String, _ field: String, _ required: Bool) -> JSONValue? {
        guard let value = object[key], value != .null else {
            if required { fail(field, "is required") }
            return nil
        }
        return value
    }

    public func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    static func integerValue(_ value: JSONValue) -> Int? {
        switch value {
        case .int(let number): return Int(exactly: number)
        case .double(let number) where number.rounded() == number && abs(number) < 1e15: return Int(number)
        default: return nil
        }
    }
}

/// Every rule a body breaks; answered as `422 validation_failed` with `details`.
public struct ValidationFailure: Error, Sendable, Equatable {
    public var errors: [FieldError]
    public init(_ errors: [FieldError]) { self.errors = errors }
}
