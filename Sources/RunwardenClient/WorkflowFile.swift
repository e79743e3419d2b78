import Foundation
import RunwardenCore
import Yams

/// Reads a workflow file — YAML or JSON (JSON is YAML) — into the create body of SPEC §2.
public enum WorkflowFile {
    public static func load(path: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WorkflowFileError("cannot read \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), name: path)
    }

    public static func parse(_ text: String, name: String = "workflow") throws -> JSONValue {
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw WorkflowFileError("\(name) is not valid YAML or JSON: \(error)")
        }
        guard let document else { throw WorkflowFileError("\(name) is empty") }
        return try json(from: document, at: name)
    }

    private static func json(from value: Any, at path: String) throws -> JSONValue {
        switch value {
        case is NSNull: return .null
        case let bool as Bool: return .bool(bool)
        case let int as Int: return .int(Int64(int))
        case let double as Double: return .double(double)
        case let string as String: return .string(string)
        case let date as Date: return .string(Timestamp(date).iso8601)
        case let array as [Any]:
            return .array(try array.enumerated().map { try json(from: $1, at: "\(path)[\($0)]") })
        case let object as [AnyHashable: Any]:
            return .object(
                try object.map { key, value in
                    JSONValue.Member("\(key)", try json(from: value, at: "\(path).\(key)"))
                }.sorted { $0.key < $1.key })
        default:
            throw WorkflowFileError("\(path) holds a value JSON cannot express: \(value)")
        }
    }
}

public struct WorkflowFileError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
