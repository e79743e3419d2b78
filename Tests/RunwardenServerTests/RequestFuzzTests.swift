import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import RunwardenCore
import RunwardenTestSupport
import Testing

// Fuzzing every write endpoint through the router (SPEC §2 "Errors"): random and malformed
// bodies never yield a 5xx, every error is the JSON envelope with a code SPEC §2 names, and
// none of them changes anything. The generator only makes bodies that are invalid by
// construction, so the whole observable state must be identical before and after.

/// The seed: `RUNWARDEN_FUZZ_SEED` to replay a failure, else a fresh one (printed either way).
let fuzzSeed = SeededRandom.seed(from: "RUNWARDEN_FUZZ_SEED")

// MARK: - Values

/// A value put into a body: a JSON value, or raw JSON text (numbers `JSONValue` cannot hold).
enum FuzzValue {
    case json(JSONValue)
    case raw(String)
}

enum FuzzPath: Hashable {
    case key(String)
    case index(Int)
}

extension JSONValue {
    /// The document with the value at `path` replaced (or added, for a missing last key);
    /// `nil` removes it.
    func fuzzReplacing(_ path: ArraySlice<FuzzPath>, with value: JSONValue?) -> JSONValue {
        guard let first = path.first else { return value ?? .null }
        let rest = path.dropFirst()
        switch (self, first) {
        case (.object(var members), .key(let key)):
            if let position = members.firstIndex(where: { $0.key == key }) {
                if rest.isEmpty, value == nil {
                    members.remove(at: position)
                } else {
                    members[position].value = members[position].value.fuzzReplacing(rest, with: value)
                }
            } else if rest.isEmpty, let value {
                members.append(.init(key, value))
            }
            return .object(members)
        case (.array(var items), .index(let position)) where items.indices.contains(position):
            if rest.isEmpty, value == nil {
                items.remove(at: position)
            } else {
                items[position] = items[position].fuzzReplacing(rest, with: value)
            }
            return .array(items)
        default:
            return self
        }
    }
}

/// One field of an endpoint's body and values that break its rules whatever else the body holds.
struct FuzzField {
    var path: [FuzzPath]
    var invalid: [FuzzValue]
    /// A string field's maximum length: a longer string is invalid.
    var maxLength: Int?
    var required = false
    /// A required field the server takes `null` for (see `heartbeatTasksNullIsRequired`).
    var nullIsAccepted = false
}

/// Wrong types for a field that must be a string.
let notAString: [FuzzValue] = [
    .json(.int(1)), .json(.bool(true)), .json(.bool(false)), .json(.array([])), .json(.object([])), .json(.double(2.5)),
    .json(.array([.string("x")])), .json(.object(["x": .string("y")])), .json(.string("")),
    .raw("1e400"), .raw("-123456789012345678901234567890"),
]
/// Wrong values for a field that must be a positive integer.
let notAPositiveInteger: [FuzzValue] = [
    .json(.int(0)), .json(.int(-1)), .json(.int(Int64.min)), .json(.double(1.5)), .json(.string("5")), .json(.bool(true)),
    .json(.array([.int(1)])), .json(.object([])), .raw("1e20"), .raw("1e400"), .raw("123456789012345678901234567890"),
    .raw("-0.5"),
]
/// Wrong values for a field that must be a list of non-empty strings.
let notAStringList: [FuzzValue] = [
    .json(.string("linux")), .json(.int(5)), .json(.bool(true)), .json(.object([])), .json(.array([.int(1)])),
    .json(.array([.string("")])), .json(.array([.null])), .json(.array([.array([])])), .json(.array([.string("a"), .object([])])),
]
/// Numbers no field of this API accepts: out of range, not integral, or beyond Int64.
let hugeNumbers = [
    "1e400", "-1e400", "123456789012345678901234567890", "-123456789012345678901234567890", "1e20", "-1e20",
    "1.7976931348623157e309", "99999999999999999999.5",
]

// MARK: - Endpoints

/// One write endpoint, how to address it, and what a valid body looks like.
struct FuzzTarget {
    var name: String
    var method: HTTPRequest.Method
    /// A path for this case (ids and names vary).
    var path: (inout SeededRandom) -> String
    /// The endpoint at its usual target (for the over-the-limit body: nothing else can be wrong).
    var usualPath: String
    /// A valid body; every generated body breaks it.
    var template: JSONValue
    var fields: [FuzzField]
    /// Whether the route reads the body at all (cancel, retry and lock release do not: their
    /// cases are made invalid by the path — a terminal run, an unknown id).
    var readsBody = true
    /// Claim's body is optional: empty or whitespace is a valid claim, so it is never sent.
    var emptyBodyIsValid = false
    /// The error codes this endpoint may answer to these cases.
    var codes: Set<String>
}

/// Error codes SPEC §2 names, with the HTTP status each one comes with.
let specErrorStatus: [String: Int] = [
    "run_not_found": 404, "task_not_found": 404, "webhook_not_found": 404, "delivery_not_found": 404,
    "lock_not_found": 404, "route_not_found": 404, "method_not_allowed": 405, "invalid_json": 400,
    "validation_failed": 422, "unauthorized": 401, "forbidden": 403, "payload_too_large": 413, "run_terminal": 409,
    "task_not_claimed": 409, "idempotency_key_reused": 422, "unavailable": 503,
]

/// The state the fuzzer must not change: a running run holding a workspace lock, a queued run,
/// a canceled run, and a webhook with pending deliveries.
struct FuzzFixture {
    var runningRunID: String
    var runningTaskID: String
    var queuedRunID: String
    var queuedTaskID: String
    var canceledRunID: String
    var webhookID: String
    var lockedWorkspace: String
    var deliveryIDs: Set<String>
}

enum FuzzCorpus {
    static let secret = "whsec_" + Data(repeating: 7, count: 24).base64EncodedString()

    static func targets(_ fixture: FuzzFixture) -> [FuzzTarget] {
        [create, cancel(fixture), claim, heartbeat(fixture), report(fixture), createWebhook, recover(fixture), retry(fixture), releaseLock(fixture)]
    }

    static var create: FuzzTarget {
        let task0: JSONValue = .object([
            "name": .string("a"), "command": .array([.string("true")]), "needs": .array([]), "workspace": .string("w"),
            "timeout_s": .int(5), "retries": .int(1), "allow_failure": .bool(false), "labels": .array([.string("linux")]),
            "env": .object(["K": .string("V")]),
        ])
        let task1: JSONValue = .object(["name": .string("b"), "command": .string("echo b"), "needs": .array([.string("a")])])
        let template: JSONValue = .object([
            "workflow": .string("fuzz"), "tasks": .array([task0, task1]), "timeout_s": .int(60),
            "callback_url": .string("http://127.0.0.1:9/cb"), "callback_secret": .string(secret),
            "metadata": .object(["k": .string("v")]),
        ])
        let t0: [FuzzPath] = [.key("tasks"), .index(0)]
        let t1: [FuzzPath] = [.key("tasks"), .index(1)]
        let fields: [FuzzField] = [
            FuzzField(path: [.key("workflow")], invalid: notAString + [.json(.null)], maxLength: 200, required: true),
            FuzzField(
                path: [.key("tasks")],
                invalid: [
                    .json(.null), .json(.array([])), .json(.string("a")), .json(.int(1)), .json(.object([])),
                    .json(.array([.int(5)])), .json(.array([.null])), .json(.array([.string("x")])), .json(.array([task0, task0])),
                ], required: true),
            FuzzField(path: [.key("timeout_s")], invalid: notAPositiveInteger),
            FuzzField(
                path: [.key("callback_url")],
                invalid: notAString + [.json(.string("ftp://x/y")), .json(.string("not a url")), .json(.string("http://")), .json(.string("/relative"))],
                maxLength: 2048),
            FuzzField(
                path: [.key("callback_secret")],
                invalid: notAString + [.json(.string("abc")), .json(.string("whsec_")), .json(.string("whsec_!!!"))], maxLength: 256),
            FuzzField(
                path: [.key("metadata")],
                invalid: [.json(.array([])), .json(.string("x")), .json(.int(1)), .json(.bool(true)), .raw("1e400")]),
            FuzzField(path: t0 + [.key("name")], invalid: notAString + [.json(.null)], maxLength: 200, required: true),
            FuzzField(
                path: t0 + [.key("command")],
                invalid: [
                    .json(.null), .json(.string("")), .json(.string("   ")), .json(.array([])), .json(.array([.int(1)])),
                    .json(.array([.string("")])), .json(.array([.string("true"), .null])), .json(.int(5)), .json(.object([])),
                    .json(.bool(true)), .raw("1e400"),
                ], required: true),
            FuzzField(
                path: t0 + [.key("needs")],
                invalid: notAStringList + [.json(.array([.string("nope")])), .json(.array([.string("a")]))]),
            FuzzField(path: t0 + [.key("workspace")], invalid: notAString, maxLength: 200),
            FuzzField(path: t0 + [.key("timeout_s")], invalid: notAPositiveInteger),
            FuzzField(
                path: t0 + [.key("retries")],
                invalid: [
                    .json(.int(-1)), .json(.int(101)), .json(.int(Int64.max)), .json(.double(1.5)), .json(.string("1")),
                    .json(.bool(true)), .json(.array([])), .raw("1e400"),
                ]),
            FuzzField(
                path: t0 + [.key("allow_failure")],
                invalid: [.json(.string("true")), .json(.int(1)), .json(.int(0)), .json(.array([])), .json(.object([]))]),
            FuzzField(path: t0 + [.key("labels")], invalid: notAStringList),
            FuzzField(
                path: t0 + [.key("env")],
                invalid: [
                    .json(.array([])), .json(.string("x")), .json(.object(["K": .int(1)])), .json(.object(["K": .null])),
                    .json(.object(["K": .array([])])), .json(.int(3)),
                ]),
            FuzzField(path: t1 + [.key("name")], invalid: [.json(.string("a"))] + notAString, maxLength: 200, required: true),
            FuzzField(path: t1 + [.key("needs")], invalid: [.json(.array([.string("b")])), .json(.array([.string("a"), .string("a")]))]),
        ]
        return FuzzTarget(
            name: "POST /v1/runs", method: .post, path: { _ in "/v1/runs" }, usualPath: "/v1/runs", template: template, fields: fields,
            codes: ["invalid_json", "validation_failed", "payload_too_large"])
    }

    static func cancel(_ fixture: FuzzFixture) -> FuzzTarget {
        FuzzTarget(
            name: "POST /v1/runs/{id}/cancel", method: .post,
            path: { random in
                let id = random.chance(0.5) ? fixture.canceledRunID : FuzzText.identifier(&random, prefix: "run_")
                return "/v1/runs/\(FuzzText.pathSegment(id))/cancel"
            },
            usualPath: "/v1/runs/\(fixture.canceledRunID)/cancel",
            template: .object(["reason": .string("fuzz")]), fields: [FuzzField(path: [.key("reason")], invalid: notAString)],
            readsBody: false, codes: ["run_terminal", "run_not_found", "route_not_found", "method_not_allowed", "payload_too_large"])
    }

    static var claim: FuzzTarget {
        FuzzTarget(
            name: "POST /v1/runners/{name}/claim", method: .post,
            path: { random in
                let name = random.chance(0.8) ? "host-a" : FuzzText.identifier(&random, prefix: "")
                let waits = ["0", "0.1", "abc", "-1", "NaN", "nan", "inf", "-inf", "", "1e", "%20", "0x10", "1_000"]
                let query = random.chance(0.3) ? "?wait=" + random.pick(waits) : ""
                return "/v1/runners/\(FuzzText.pathSegment(name))/claim\(query)"
            },
            usualPath: "/v1/runners/host-a/claim",
            template: .object(["labels": .array([.string("linux")])]),
            fields: [FuzzField(path: [.key("labels")], invalid: notAStringList)],
            emptyBodyIsValid: true, codes: ["invalid_json", "validation_failed", "payload_too_large", "route_not_found", "method_not_allowed"])
    }

    static func heartbeat(_ fixture: FuzzFixture) -> FuzzTarget {
        FuzzTarget(
            name: "POST /v1/runners/{name}/heartbeat", method: .post,
            path: { random in
                let name = random.chance(0.8) ? "host-a" : FuzzText.identifier(&random, prefix: "")
                return "/v1/runners/\(FuzzText.pathSegment(name))/heartbeat"
            },
            usualPath: "/v1/runners/host-a/heartbeat",
            template: .object(["tasks": .array([.string(fixture.runningTaskID)])]),
            fields: [
                FuzzField(
                    path: [.key("tasks")],
                    invalid: notAStringList + [.json(.array(Array(repeating: .string(fixture.runningTaskID), count: 10_001)))],
                    required: true, nullIsAccepted: true)
            ],
            codes: ["invalid_json", "validation_failed", "payload_too_large", "route_not_found", "method_not_allowed"])
    }

    static func report(_ fixture: FuzzFixture) -> FuzzTarget {
        let template: JSONValue = .object([
            "status": .string("succeeded"), "attempt": .int(1), "exit_code": .int(0),
            "error": .object(["code": .string("exit_code"), "message": .string("m"), "retryable": .bool(false)]),
            "output_ref": .string("s3://bucket/x"), "progress": .object(["done": .int(1), "total": .int(2)]),
            "timestamp": .string("2026-01-01T00:00:00.000Z"),
        ])
        let fields: [FuzzField] = [
            FuzzField(
                path: [.key("status")],
                invalid: notAString + [
                    .json(.null), .json(.string("queued")), .json(.string("pending")), .json(.string("dispatched")),
                    .json(.string("skipped")), .json(.string("canceling")), .json(.string("SUCCEEDED")), .json(.string("bogus")),
                    .json(.string("succeeded ")),
                ], maxLength: 32, required: true),
            FuzzField(path: [.key("attempt")], invalid: notAPositiveInteger),
            FuzzField(
                path: [.key("exit_code")],
                invalid: [
                    .json(.double(1.5)), .json(.string("0")), .json(.bool(true)), .json(.array([])), .json(.object([])),
                    .json(.int(-5_000_000_000)), .json(.int(Int64.min)), .raw("1e20"), .raw("1e400"), .raw("-1e400"),
                ]),
            FuzzField(
                path: [.key("error")],
                invalid: [
                    .json(.string("x")), .json(.int(5)), .json(.array([])), .json(.object([])), .json(.object(["code": .int(5)])),
                    .json(.object(["code": .string("")])), .json(.object(["code": .string("x"), "extra": .int(1)])),
                    .json(.object(["code": .string("x"), "retryable": .string("yes")])),
                    .json(.object(["code": .string("x"), "message": .int(5)])), .json(.object(["message": .string("m")])),
                ]),
            FuzzField(path: [.key("output_ref")], invalid: notAString, maxLength: 2048),
            FuzzField(
                path: [.key("progress")],
                invalid: [
                    .json(.string("50%")), .json(.int(5)), .json(.array([])), .json(.object(["done": .int(1)])),
                    .json(.object(["total": .int(1)])), .json(.object(["done": .int(-1), "total": .int(2)])),
                    .json(.object(["done": .double(1.5), "total": .int(2)])),
                    .json(.object(["done": .int(1), "total": .int(2), "x": .int(1)])), .json(.object([])),
                ]),
            FuzzField(
                path: [.key("timestamp")],
                invalid: notAString + [
                    .json(.string("yesterday")), .json(.string("2026-13-45T99:99:99Z")), .json(.string("2026-01-01")),
                    .json(.string("1767225600")),
                ], maxLength: 64),
        ]
        return FuzzTarget(
            name: "POST /v1/tasks/{id}/status", method: .post,
            path: { random in
                let roll = random.int(0...9)
                let id =
                    roll < 8 ? fixture.runningTaskID : roll == 8 ? fixture.queuedTaskID : FuzzText.identifier(&random, prefix: "task_")
                return "/v1/tasks/\(FuzzText.pathSegment(id))/status"
            },
            usualPath: "/v1/tasks/\(fixture.runningTaskID)/status",
            template: template, fields: fields,
            codes: ["invalid_json", "validation_failed", "payload_too_large", "route_not_found", "method_not_allowed"])
    }

    static var createWebhook: FuzzTarget {
        let template: JSONValue = .object([
            "url": .string("http://127.0.0.1:9/hook"), "events": .array([.string("run.*"), .string("task.failed")]),
            "secret": .string(secret), "description": .string("d"),
        ])
        let fields: [FuzzField] = [
            FuzzField(
                path: [.key("url")],
                invalid: notAString + [
                    .json(.null), .json(.string("ftp://x/y")), .json(.string("nope")), .json(.string("http://")),
                    .json(.string("/hook")), .json(.string("javascript:alert(1)")),
                ], maxLength: 2048, required: true),
            FuzzField(
                path: [.key("events")],
                invalid: notAStringList + [
                    .json(.array([])), .json(.array([.string("bogus")])), .json(.array([.string("run.*"), .string("run.nope")])),
                    .json(.array([.string("RUN.*")])),
                ]),
            FuzzField(
                path: [.key("secret")],
                invalid: notAString + [.json(.string("abc")), .json(.string("whsec_")), .json(.string("whsec_!!!"))], maxLength: 256),
            FuzzField(path: [.key("description")], invalid: notAString, maxLength: 500),
        ]
        return FuzzTarget(
            name: "POST /v1/webhooks", method: .post, path: { _ in "/v1/webhooks" }, usualPath: "/v1/webhooks", template: template, fields: fields,
            codes: ["invalid_json", "validation_failed", "payload_too_large"])
    }

    static func recover(_ fixture: FuzzFixture) -> FuzzTarget {
        FuzzTarget(
            name: "POST /v1/webhooks/{id}/recover", method: .post,
            path: { random in
                let id = random.chance(0.8) ? fixture.webhookID : FuzzText.identifier(&random, prefix: "wh_")
                return "/v1/webhooks/\(FuzzText.pathSegment(id))/recover"
            },
            usualPath: "/v1/webhooks/\(fixture.webhookID)/recover",
            template: .object(["since": .string("2026-01-01T00:00:00.000Z")]),
            fields: [
                FuzzField(
                    path: [.key("since")],
                    invalid: notAString + [
                        .json(.null), .json(.string("yesterday")), .json(.string("2026-13-45T00:00:00Z")), .json(.string("0")),
                    ], maxLength: 64, required: true)
            ],
            codes: ["invalid_json", "validation_failed", "payload_too_large", "route_not_found", "method_not_allowed"])
    }

    static func retry(_ fixture: FuzzFixture) -> FuzzTarget {
        FuzzTarget(
            name: "POST /v1/deliveries/{id}/retry", method: .post,
            path: { random in
                var id = FuzzText.identifier(&random, prefix: "dlv_")
                if fixture.deliveryIDs.contains(id) { id += "x" }
                return "/v1/deliveries/\(FuzzText.pathSegment(id))/retry"
            },
            usualPath: "/v1/deliveries/dlv_01JZZZZZZZZZZZZZZZZZZZZZZZ/retry",
            template: .object(["reason": .string("fuzz")]), fields: [FuzzField(path: [.key("reason")], invalid: notAString)],
            readsBody: false, codes: ["delivery_not_found", "route_not_found", "method_not_allowed", "payload_too_large"])
    }

    static func releaseLock(_ fixture: FuzzFixture) -> FuzzTarget {
        FuzzTarget(
            name: "DELETE /v1/locks/{workspace}", method: .delete,
            path: { random in
                var name = FuzzText.identifier(&random, prefix: "")
                if name == fixture.lockedWorkspace { name += "x" }
                return "/v1/locks/\(FuzzText.pathSegment(name))"
            },
            usualPath: "/v1/locks/fuzz-free-workspace",
            template: .object(["reason": .string("fuzz")]), fields: [FuzzField(path: [.key("reason")], invalid: notAString)],
            readsBody: false, codes: ["lock_not_found", "route_not_found", "method_not_allowed", "payload_too_large"])
    }
}

// MARK: - Text

enum FuzzText {
    /// Scalars from many corners of Unicode: ASCII, Latin-1, combining marks, right-to-left,
    /// CJK, emoji, zero-width and byte-order marks, controls.
    static let scalarRanges: [ClosedRange<UInt32>] = [
        0x20...0x7E, 0xA0...0xFF, 0x300...0x36F, 0x590...0x6FF, 0x4E00...0x4FFF, 0x1F300...0x1F6FF, 0x200B...0x200F,
        0xFEFF...0xFEFF, 0x00...0x1F, 0x10000...0x1000F, 0xFFF0...0xFFFD,
    ]

    static func unicode(_ random: inout SeededRandom, count: Int) -> String {
        var text = String.UnicodeScalarView()
        for _ in 0..<count {
            let range = random.pick(scalarRanges)
            if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &random)) { text.append(scalar) }
        }
        return String(text)
    }

    /// An id or name for a path: a well-formed-looking id, printable ASCII, or any Unicode.
    static func identifier(_ random: inout SeededRandom, prefix: String) -> String {
        switch random.int(0...3) {
        case 0:
            let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
            return prefix + String((0..<26).map { _ in random.pick(alphabet) })
        case 1:
            return String((0..<random.int(1...40)).map { _ in Character(Unicode.Scalar(UInt8(random.int(0x21...0x7E)))) })
        case 2:
            return prefix + unicode(&random, count: random.int(1...30))
        default:
            return unicode(&random, count: random.int(1...300))
        }
    }

    /// Percent-encodes every byte outside RFC 3986's unreserved set.
    static func pathSegment(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let char = Character(Unicode.Scalar(byte))
            if char.isASCII, char.isLetter || char.isNumber || "-._~".contains(char) {
                out.append(char)
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

// MARK: - Bodies

struct FuzzCase {
    var category: String
    var body: [UInt8]
}

struct FuzzBodyMaker {
    let target: FuzzTarget

    private var bodyFields: [FuzzField] { target.fields }

    func encode(_ value: JSONValue, raw: [String: String] = [:]) -> [UInt8] {
        var text = String(decoding: value.encoded(), as: UTF8.self)
        for (placeholder, rawText) in raw { text = text.replacingOccurrences(of: "\"\(placeholder)\"", with: rawText) }
        return Array(text.utf8)
    }

    /// The template with one field broken: (document with placeholders, raw replacements).
    func broken(_ random: inout SeededRandom) -> (JSONValue, [String: String], String) {
        let field = random.pick(bodyFields)
        let value = random.pick(field.invalid)
        switch value {
        case .json(let json):
            return (target.template.fuzzReplacing(field.path[...], with: json), [:], "wrong-type")
        case .raw(let text):
            let placeholder = "@@RAW\(random.int(0...999_999))@@"
            return (target.template.fuzzReplacing(field.path[...], with: .string(placeholder)), [placeholder: text], "wrong-type")
        }
    }

    /// A body that breaks the endpoint's rules whatever the server makes of the rest.
    func invalidDocument(_ random: inout SeededRandom) -> (JSONValue, [String: String]) {
        if random.chance(0.25) {
            // An unknown member: always a rule broken (typos such as `timeout` are caught).
            let key = random.chance(0.5) ? FuzzText.unicode(&random, count: random.int(1...20)) : random.pick(["timeout", "Workflow", "STATUS", "label", "task", "urls", ""])
            if target.template[key] == nil {
                return (target.template.fuzzReplacing([.key(key)], with: .string(FuzzText.unicode(&random, count: random.int(0...50)))), [:])
            }
        }
        let (document, raw, _) = broken(&random)
        return (document, raw)
    }

    func make(_ random: inout SeededRandom) -> FuzzCase {
        for _ in 0..<20 {
            let made = candidate(&random)
            if acceptable(made.body) { return made }
        }
        return FuzzCase(category: "fallback", body: Array("{\"".utf8))
    }

    /// Never a whitespace-only body for claim (a valid claim), never a parseable object that
    /// random bytes happened to form.
    private func acceptable(_ body: [UInt8]) -> Bool {
        if target.emptyBodyIsValid, body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return false }
        return true
    }

    private func candidate(_ random: inout SeededRandom) -> FuzzCase {
        let categories = [
            "random-bytes", "truncated", "deep-array", "deep-object", "deep-in-field", "huge-number", "wrong-type",
            "wrong-type", "wrong-type", "unicode", "invalid-utf8", "nulls", "empty", "duplicate-keys", "long-string",
            "missing-required", "not-an-object", "trailing-garbage",
        ]
        let category = random.pick(categories)
        switch category {
        case "random-bytes":
            var bytes = (0..<random.int(1...600)).map { _ in UInt8.random(in: .min ... .max, using: &random) }
            if random.chance(0.5) { bytes.insert(UInt8(ascii: "{"), at: 0) }
            if let parsed = try? JSONValue.parse(Data(bytes)), parsed.objectMembers != nil { bytes.append(UInt8(ascii: "}")) }
            return FuzzCase(category: category, body: bytes)
        case "truncated":
            let (document, raw) = random.chance(0.5) ? (target.template, [:]) : invalidDocument(&random)
            let full = encode(document, raw: raw)
            return FuzzCase(category: category, body: Array(full.prefix(random.int(1...(full.count - 1)))))
        case "deep-array":
            let depth = random.pick([600, 2_000, 10_000])
            let open = Array(repeating: UInt8(ascii: "["), count: depth)
            let close = random.chance(0.5) ? Array(repeating: UInt8(ascii: "]"), count: depth) : []
            return FuzzCase(category: category, body: open + close)
        case "deep-object":
            let depth = random.pick([600, 2_000, 10_000])
            let open = String(repeating: #"{"a":"#, count: depth) + "1"
            let close = random.chance(0.5) ? String(repeating: "}", count: depth) : ""
            return FuzzCase(category: category, body: Array((open + close).utf8))
        case "deep-in-field":
            let field = random.pick(bodyFields)
            let depth = random.pick([600, 5_000])
            let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let placeholder = "@@DEEP@@"
            let document = target.template.fuzzReplacing(field.path[...], with: .string(placeholder))
            return FuzzCase(category: category, body: encode(document, raw: [placeholder: nested]))
        case "huge-number":
            let field = random.pick(bodyFields)
            let placeholder = "@@HUGE@@"
            let document = target.template.fuzzReplacing(field.path[...], with: .string(placeholder))
            return FuzzCase(category: category, body: encode(document, raw: [placeholder: random.pick(hugeNumbers)]))
        case "wrong-type":
            let (document, raw, _) = broken(&random)
            return FuzzCase(category: category, body: encode(document, raw: raw))
        case "unicode":
            // Unicode in a string field and as an unknown member's name and value.
            var (document, raw) = invalidDocument(&random)
            if let field = bodyFields.filter({ $0.maxLength != nil }).randomElement(using: &random) {
                let text = FuzzText.unicode(&random, count: random.int(1...min(50, field.maxLength ?? 50)))
                // Only a field the breakage left alone, so the body stays invalid.
                if case .string = document.fuzzValue(at: field.path), target.template.fuzzValue(at: field.path) == document.fuzzValue(at: field.path) {
                    document = document.fuzzReplacing(field.path[...], with: .string(text))
                }
            }
            // And an unknown member with a right-to-left override in its name.
            let key = "\u{202E}" + FuzzText.unicode(&random, count: random.int(1...10))
            let placeholder = "@@UNICODE\(random.int(0...999_999))@@"
            document = document.fuzzReplacing([.key(key)], with: .string(placeholder))
            raw[placeholder] = "\"" + FuzzText.unicode(&random, count: 10).unicodeScalars.map { String(format: "\\u%04x", $0.value > 0xFFFF ? 0xFFFD : $0.value) }.joined() + "\""
            return FuzzCase(category: category, body: encode(document, raw: raw))
        case "invalid-utf8":
            let (document, raw) = invalidDocument(&random)
            var body = encode(document, raw: raw)
            let bad: [[UInt8]] = [[0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xF0, 0x28, 0x8C, 0xBC], [0xED, 0xA0, 0x80], [0xC0, 0xAF]]
            if let quote = body.firstIndex(of: UInt8(ascii: "\"")) { body.insert(contentsOf: random.pick(bad), at: quote + 1) }
            return FuzzCase(category: category, body: body)
        case "nulls":
            let required = bodyFields.filter { $0.required && !$0.nullIsAccepted }
            if let field = required.randomElement(using: &random), random.chance(0.7) {
                return FuzzCase(category: category, body: encode(target.template.fuzzReplacing(field.path[...], with: .null)))
            }
            return FuzzCase(category: category, body: Array(random.pick(["null", "[null]", "{\"\\u0000\":null}", "\"\\u0000\""]).utf8))
        case "empty":
            return FuzzCase(category: category, body: Array(random.pick(["", " ", "\n", "\r\n\t "]).utf8))
        case "duplicate-keys":
            // The broken member twice (whichever copy a parser keeps, the body is invalid), and
            // a valid member repeated.
            let (document, raw) = invalidDocument(&random)
            guard let members = document.objectMembers, !members.isEmpty else { return FuzzCase(category: category, body: encode(document, raw: raw)) }
            let templateMembers = target.template.objectMembers ?? []
            let changed = members.filter { member in !templateMembers.contains(member) }
            let repeated = changed + [random.pick(members)]
            let text = "{" + (members + repeated).map { member in
                String(decoding: JSONValue.object([member]).encoded().dropFirst().dropLast(), as: UTF8.self)
            }.joined(separator: ",") + "}"
            var out = text
            for (placeholder, rawText) in raw { out = out.replacingOccurrences(of: "\"\(placeholder)\"", with: rawText) }
            return FuzzCase(category: category, body: Array(out.utf8))
        case "long-string":
            let length = random.pick([5_000, 70_000, 300_000, 900_000])
            let long = String(repeating: random.pick(["x", "é", "字"]), count: length / 3)
            if let field = bodyFields.filter({ ($0.maxLength ?? .max) < long.count }).randomElement(using: &random), random.chance(0.6) {
                return FuzzCase(category: category, body: encode(target.template.fuzzReplacing(field.path[...], with: .string(long))))
            }
            // An unknown member with a long name or a long value (not both: the body stays under 1 MiB).
            let (key, value) = random.chance(0.5) ? (long, "v") : ("unknown_field", long)
            return FuzzCase(category: category, body: encode(target.template.fuzzReplacing([.key(key)], with: .string(value))))
        case "missing-required":
            if let field = bodyFields.filter(\.required).randomElement(using: &random) {
                return FuzzCase(category: category, body: encode(target.template.fuzzReplacing(field.path[...], with: nil)))
            }
            let (document, raw) = invalidDocument(&random)
            return FuzzCase(category: category, body: encode(document, raw: raw))
        case "not-an-object":
            let options: [JSONValue] = [
                .array([]), .string("x"), .int(42), .bool(true), .double(-0.5), .array([target.template]),
                .string(String(decoding: target.template.encoded(), as: UTF8.self)),
            ]
            return FuzzCase(category: category, body: encode(random.pick(options)))
        default:  // trailing-garbage
            let valid = encode(target.template)
            let tails = [" x", "}", ",", "]", " {\"a\":1}", "\u{0}", " //", "\"", " null"]
            var body = valid + Array(random.pick(tails).utf8)
            if random.chance(0.3) {
                // A trailing comma inside: `{..., }`.
                body = Array(valid.dropLast()) + Array(",}".utf8)
            }
            return FuzzCase(category: category, body: body)
        }
    }
}

extension JSONValue {
    func fuzzValue(at path: [FuzzPath]) -> JSONValue? {
        var current: JSONValue? = self
        for step in path {
            switch (current, step) {
            case (.some(.object), .key(let key)): current = current?[key]
            case (.some(.array(let items)), .index(let index)) where items.indices.contains(index): current = items[index]
            default: return nil
            }
        }
        return current
    }
}

// MARK: - The state that must not change

extension TestClientProtocol {
    /// Everything a bad request could touch, as read through the API.
    func fuzzObservableState(_ fixture: FuzzFixture) async throws -> [String: JSONValue] {
        var state: [String: JSONValue] = [:]
        for id in [fixture.runningRunID, fixture.queuedRunID, fixture.canceledRunID] {
            state["run \(id)"] = try await getJSON("/v1/runs/\(id)").canonical
            state["timeline \(id)"] = try await getJSON("/v1/runs/\(id)/events?limit=500").canonical
        }
        state["tasks"] = .array([
            try await getJSON("/v1/tasks/\(fixture.runningTaskID)").canonical, try await getJSON("/v1/tasks/\(fixture.queuedTaskID)").canonical,
        ])
        state["events"] = try await getJSON("/v1/events?limit=500").canonical
        state["runs"] = try await getJSON("/v1/runs?limit=500").canonical
        state["webhooks"] = try await getJSON("/v1/webhooks?limit=500").canonical
        state["deliveries"] = try await getJSON("/v1/webhooks/\(fixture.webhookID)/deliveries?limit=500").canonical
        state["locks"] = try await getJSON("/v1/locks").canonical
        return state
    }
}

// MARK: - The tests

@Suite("Request fuzzing: malformed bodies at every write endpoint", .timeLimit(.minutes(3)))
struct RequestFuzzTests {
    /// 300 per endpoint; `RUNWARDEN_FUZZ_CASES` (at most 20 000) to fuzz harder by hand.
    static let casesPerEndpoint: Int = {
        guard let text = ProcessInfo.processInfo.environment["RUNWARDEN_FUZZ_CASES"], let count = Int(text) else { return 300 }
        return min(max(count, 1), 20_000)
    }()

    @Test("Random and malformed bodies at every write endpoint: never a 5xx, always the SPEC error envelope, nothing changes")
    func fuzzWriteEndpoints() async throws {
        let seed = fuzzSeed
        print("RequestFuzzTests seed: \(seed) (replay with RUNWARDEN_FUZZ_SEED=\(seed))")
        let started = ContinuousClock.now
        try await withApp { client in
            let fixture = try await Self.makeFixture(client)
            let before = try await client.fuzzObservableState(fixture)
            var random = SeededRandom(seed: seed)
            var failures: [String] = []
            var counts: [String: Int] = [:]

            for target in FuzzCorpus.targets(fixture) {
                let maker = FuzzBodyMaker(target: target)
                var cases = (0..<Self.casesPerEndpoint).map { _ in maker.make(&random) }
                // One body just over the 1 MiB limit.
                let oversized = #"{"pad":""# + String(repeating: "x", count: (1 << 20) + 10) + #""}"#
                cases.append(FuzzCase(category: "over-the-limit", body: Array(oversized.utf8)))

                for fuzzCase in cases {
                    let path = fuzzCase.category == "over-the-limit" ? target.usualPath : target.path(&random)
                    var headers: HTTPFields = [:]
                    if random.chance(0.8) { headers[.contentType] = random.pick(["application/json", "text/plain", "application/json; charset=utf-16"]) }
                    let response = try await client.execute(
                        uri: path, method: target.method, headers: headers,
                        body: fuzzCase.body.isEmpty && random.chance(0.5) ? nil : ByteBuffer(bytes: fuzzCase.body))
                    counts["\(response.status.code)", default: 0] += 1
                    if let problem = Self.check(response, target: target, fuzzCase: fuzzCase) {
                        let preview = String(decoding: fuzzCase.body.prefix(160), as: UTF8.self)
                        failures.append("\(target.name) \(path.prefix(120)) [\(fuzzCase.category), \(fuzzCase.body.count) bytes] \(problem) — body: \(preview)")
                    }
                }
            }

            let after = try await client.fuzzObservableState(fixture)
            for failure in failures.prefix(25) { Issue.record("seed \(seed): \(failure)") }
            #expect(failures.isEmpty, "seed \(seed): \(failures.count) bad answers (first 25 recorded above)")
            for key in before.keys.sorted() where before[key] != after[key] {
                Issue.record("seed \(seed): \(key) changed:\nbefore \(String(decoding: before[key]!.encoded(), as: UTF8.self))\nafter  \(String(decoding: (after[key] ?? .null).encoded(), as: UTF8.self))")
            }
            #expect(before == after, "seed \(seed): the bad requests changed the state")
            print("RequestFuzzTests: answers by status \(counts.sorted { $0.key < $1.key })")
        }
        print("RequestFuzzTests: \(FuzzCorpus.targets(.placeholder).count) endpoints × \(Self.casesPerEndpoint + 1) cases in \(seconds(since: started)) s")
    }

    /// What is wrong with the answer to an invalid request, or nil.
    static func check(_ response: TestResponse, target: FuzzTarget, fuzzCase: FuzzCase) -> String? {
        let status = Int(response.status.code)
        if status >= 500 { return "answered \(status): \(response.text.prefix(300))" }
        if status < 400 { return "accepted an invalid request with \(status): \(response.text.prefix(300))" }
        guard let envelope = try? response.json(), let error = envelope["error"] else {
            return "answered \(status) without the JSON error envelope: \(response.text.prefix(300))"
        }
        guard let code = error["code"]?.asString else { return "error envelope without a code: \(response.text.prefix(300))" }
        guard let expectedStatus = specErrorStatus[code] else { return "answered a code SPEC §2 does not name: \(code) (\(status))" }
        if expectedStatus != status { return "answered \(code) with HTTP \(status), expected \(expectedStatus)" }
        if !target.codes.contains(code) { return "answered \(code) (\(status)), expected one of \(target.codes.sorted())" }
        if fuzzCase.category == "over-the-limit", target.readsBody, code != "payload_too_large" {
            return "a body over 1 MiB answered \(code), expected payload_too_large"
        }
        if (error["message"]?.asString ?? "").isEmpty { return "error envelope without a message" }
        if (error["request_id"]?.asString ?? "").isEmpty { return "error envelope without a request_id" }
        if !(response.headers[.contentType]?.hasPrefix("application/json") ?? false) { return "error answered without a JSON content type" }
        return nil
    }

    /// A run running on host-a and holding a workspace lock (its second task pending), a
    /// queued run, a canceled run, and a webhook with deliveries waiting in the outbox.
    static func makeFixture(_ client: any TestClientProtocol) async throws -> FuzzFixture {
        let webhook = try await client.send(
            .post, "/v1/webhooks", json: #"{"url":"http://127.0.0.1:9/fuzz-hook","events":["*"]}"#)
        guard webhook.status == .created, let webhookID = try webhook.json()["id"]?.asString else { throw UnexpectedResponse(webhook) }

        let lockedWorkspace = "fuzz-held-ws"
        let running = try await client.createRun(
            runBody(
                workflow: "fuzz-running",
                tasks: #"[{"name":"build","command":["make"],"workspace":"\#(lockedWorkspace)"},{"name":"pkg","command":"make pkg","needs":["build"]}]"#))
        let runningRunID = running["id"]?.asString ?? ""
        let runningTaskID = try await client.claimTaskID(labels: ["linux"])
        try await client.reportOK(runningTaskID, reportBody("running", #""progress":{"done":1,"total":4}"#), runner: "host-a")

        let queued = try await client.createRun(runBody(workflow: "fuzz-queued", tasks: "[\(taskJSON("only"))]"))
        let queuedRunID = queued["id"]?.asString ?? ""
        let queuedTaskID = queued.task(named: "only")?["id"]?.asString ?? ""

        let canceled = try await client.createRun(runBody(workflow: "fuzz-canceled", tasks: "[\(taskJSON("never", extra: #""labels":["nowhere"]"#))]"))
        let canceledRunID = canceled["id"]?.asString ?? ""
        let cancel = try await client.send(.post, "/v1/runs/\(canceledRunID)/cancel")
        guard cancel.status == .accepted else { throw UnexpectedResponse(cancel) }

        let deliveries = try await client.getJSON("/v1/webhooks/\(webhookID)/deliveries?limit=500")["items"]?.asArray ?? []
        #expect(!deliveries.isEmpty, "the fixture's events should wait in the webhook outbox")
        #expect(try await client.getJSON("/v1/locks")["items"]?.asArray?.count == 1)
        return FuzzFixture(
            runningRunID: runningRunID, runningTaskID: runningTaskID, queuedRunID: queuedRunID, queuedTaskID: queuedTaskID,
            canceledRunID: canceledRunID, webhookID: webhookID, lockedWorkspace: lockedWorkspace,
            deliveryIDs: Set(deliveries.compactMap { $0["id"]?.asString }))
    }

    // MARK: Valid but extreme values the fuzzer must not send: each one crashes the server process.

    @Test(
        "A create body with timeout_s 9223372036854775807 is answered (202 or 422), not a crash")
    func hugeRunTimeoutIsAnswered() async throws {
        try await withApp { client in
            let response = try await client.send(
                .post, "/v1/runs", json: runBody(tasks: "[\(taskJSON("build"))]", extra: #""timeout_s":9223372036854775807"#))
            #expect(response.status == .accepted || response.status == .unprocessableContent, "\(response.status): \(response.text)")
        }
    }

    @Test("A task timeout_s past a year is refused at create, so no deadline can overflow later")
    func hugeTaskTimeoutIsRefused() async throws {
        try await withApp { client in
            let response = try await client.send(
                .post, "/v1/runs", json: runBody(tasks: "[\(taskJSON("build", extra: #""timeout_s":10000000000000000"#))]"))
            #expect(response.status == .unprocessableContent, "\(response.status): \(response.text)")
            #expect(response.text.contains("tasks[0].timeout_s"))
        }
    }

    @Test("A task with the largest timeout_s allowed can be claimed and reported running")
    func largestTaskTimeoutWorks() async throws {
        try await withApp { client in
            _ = try await client.createRun(runBody(tasks: "[\(taskJSON("build", extra: #""timeout_s":31536000"#))]"))
            let taskID = try await client.claimTaskID()
            let response = try await client.report(taskID, reportBody("running"))
            #expect(response.status == .ok, "\(response.status): \(response.text)")
        }
    }

    @Test(
        "A heartbeat with \"tasks\": null is 422 validation_failed, as one without tasks is")
    func heartbeatTasksNullIsRequired() async throws {
        try await withApp { client in
            let missing = try await client.send(.post, "/v1/runners/host-a/heartbeat", json: "{}")
            let null = try await client.send(.post, "/v1/runners/host-a/heartbeat", json: #"{"tasks":null}"#)
            try expectError(missing, .unprocessableContent, "validation_failed")
            try expectError(null, .unprocessableContent, "validation_failed")
        }
    }

    @Test(
        "A long-poll with ?wait=1e300 is answered (capped or 422), not a crash")
    func hugeWaitIsAnswered() async throws {
        try await withApp { client in
            let runID = try await client.createRun(oneTaskRun)["id"]?.asString ?? ""
            // version 0 is already passed: a server that survives the parameter answers at once.
            let response = try await client.send(.get, "/v1/runs/\(runID)?version=0&wait=1e300")
            #expect(response.status.code < 500, "\(response.status): \(response.text)")
        }
    }
}

extension FuzzFixture {
    static let placeholder = FuzzFixture(
        runningRunID: "", runningTaskID: "", queuedRunID: "", queuedTaskID: "", canceledRunID: "", webhookID: "", lockedWorkspace: "",
        deliveryIDs: [])
}
