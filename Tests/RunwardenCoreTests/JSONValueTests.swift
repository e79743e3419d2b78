import Foundation
import Testing
import RunwardenCore

@Suite("JSON values")
struct JSONValueTests {
    @Test(arguments: [
        ("1", JSONValue.int(1)), ("0", .int(0)), ("-7", .int(-7)), ("true", .bool(true)), ("false", .bool(false)),
        ("1.5", .double(1.5)), ("null", .null), (#""1""#, .string("1")), (#""true""#, .string("true")),
        ("[1, true, null]", .array([.int(1), .bool(true), .null])),
    ])
    func numbersBooleansAndStringsKeepTheirJSONType(text: String, value: JSONValue) throws {
        #expect(try JSONValue.parse(Data(text.utf8)) == value)
    }

    @Test func anObjectParsesWithItsMembers() throws {
        let value = try JSONValue.parse(Data(#"{"a": 1, "b": {"c": [true]}}"#.utf8))
        #expect(value["a"] == .int(1))
        #expect(value["b"]?["c"] == .array([.bool(true)]))
        #expect(value["missing"] == nil)
        #expect(JSONValue.int(1)["a"] == nil)
    }

    // Foundation accepts a trailing comma ("[1,]"), so it is not listed here.
    @Test(arguments: ["", "{", "{\"a\": }", "[1 2]", "nul", "{'a': 1}", "[1]x", "01", "[NaN]"])
    func malformedJSONThrows(_ text: String) {
        #expect(throws: (any Error).self) { try JSONValue.parse(Data(text.utf8)) }
    }

    @Test func encodingKeepsMemberOrderAndDoesNotEscapeSlashes() {
        let value = JSONValue.object(["z": .int(1), "a": .string("/v1/runs"), "m": .null])
        #expect(String(decoding: value.encoded(), as: UTF8.self) == #"{"z":1,"a":"/v1/runs","m":null}"#)
    }

    @Test func encodingAndParsingRoundTrip() throws {
        let value = JSONValue.object([
            "s": .string("ünïcødé \"quoted\""), "i": .int(Int64.max), "d": .double(0.25), "b": .bool(false), "n": .null,
            "a": .array([.object(["k": .string("v")])]),
        ])
        #expect(try JSONValue.parse(value.encoded()).canonical == value.canonical)
    }

    @Test func bodiesThatMeanTheSameJSONHaveEqualCanonicalForms() throws {
        let a = try JSONValue.parse(Data(#"{"workflow": "w", "tasks": [{"name": "a", "command": "x"}]}"#.utf8))
        let b = try JSONValue.parse(Data(#"{"tasks": [{"command": "x", "name": "a"}], "workflow": "w"}"#.utf8))
        let c = try JSONValue.parse(Data(#"{"tasks": [{"command": "y", "name": "a"}], "workflow": "w"}"#.utf8))
        #expect(a.canonical == b.canonical)
        #expect(a.canonical != c.canonical)
    }

    @Test(arguments: [
        (JSONValue.null, "null"), (.bool(true), "boolean"), (.int(1), "number"), (.double(1.5), "number"),
        (.string(""), "string"), (.array([]), "array"), (.object([JSONValue.Member]()), "object"),
    ])
    func typeNamesAreJSONTypeNames(value: JSONValue, name: String) {
        #expect(value.typeName == name)
    }

    @Test func optionalHelpersRenderNilAsNull() {
        #expect(JSONValue(nil as String?) == .null)
        #expect(JSONValue(nil as Int?) == .null)
        #expect(JSONValue(nil as Timestamp?) == .null)
        #expect(JSONValue(t0 as Timestamp?) == .string("2026-01-01T00:00:00.000Z"))
        #expect(JSONValue(stringMap: ["b": "2", "a": "1"]) == .object(["a": .string("1"), "b": .string("2")]))
    }
}
