import Foundation

/// Encodes any `Encodable` into JSON text (or a `JSONValue`) through the same order-preserving
/// writer as every other body. Two things `JSONEncoder` does not do, and the API needs: members
/// come out in the order the type declares them (SPEC's field order, which people read in `curl`
/// output), and a nil optional is written as `null` — every field is always present (SPEC §2) —
/// unless its key is listed in `OmittedWhenNil`.
public enum JSONValueEncoder {
    /// The document as a value (tests, and bodies that are inspected before they are sent).
    public static func encode(_ value: some Encodable) -> JSONValue { tree(of: value).resolved }

    /// The document as compact JSON text, written straight from what was encoded (no
    /// `JSONValue` in between): what the API sends.
    public static func data(_ value: some Encodable) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        tree(of: value).write(to: &out)
        return Data(out)
    }

    /// Only the API's own wire types come here, and their `encode(to:)` never throw (this
    /// encoder itself throws nothing); a throw would be a programming error, caught by tests.
    private static func tree(of value: some Encodable) -> Slot {
        let root = Slot()
        if let scalar = Slot.scalar(value) {
            root.set(scalar)
            return root
        }
        do {
            try value.encode(to: SlotEncoder(slot: root, codingPath: []))
        } catch {
            preconditionFailure("a wire type threw while encoding: \(error)")
        }
        return root
    }
}

/// Coding keys whose nil values are left out instead of written as `null`: fields SPEC shows
/// only in some answers (a run's `tasks` in a list, a secret shown once).
public protocol OmittedWhenNil: CodingKey {
    static var omittedWhenNil: Set<String> { get }
}

extension CodingKey {
    static func isOmittedWhenNil(_ key: Self) -> Bool {
        (Self.self as? any OmittedWhenNil.Type)?.omittedWhenNil.contains(key.stringValue) ?? false
    }
}

// MARK: - The tree being built

/// One value under construction: a finished scalar, or a container still being filled. The
/// children live in the slot's own arrays, appended in place (an enum payload would be copied
/// on every append: quadratic in a run's task count); scalar children need no slot of their own.
private final class Slot {
    enum Kind { case value, object, array }
    enum Child {
        case scalar(JSONValue)
        case slot(Slot)

        var resolved: JSONValue {
            switch self {
            case .scalar(let value): value
            case .slot(let slot): slot.resolved
            }
        }

        func write(to out: inout [UInt8]) {
            switch self {
            case .scalar(let value): value.write(to: &out)
            case .slot(let slot): slot.write(to: &out)
            }
        }
    }

    var kind = Kind.value
    var value = JSONValue.null
    var keys: [String] = []
    var children: [Child] = []

    func set(_ scalar: JSONValue) {
        kind = .value
        value = scalar
    }

    var resolved: JSONValue {
        switch kind {
        case .value: value
        case .object: .object(zip(keys, children).map { JSONValue.Member($0, $1.resolved) })
        case .array: .array(children.map(\.resolved))
        }
    }

    func write(to out: inout [UInt8]) {
        switch kind {
        case .value: value.write(to: &out)
        case .object:
            out.append(UInt8(ascii: "{"))
            for index in keys.indices {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(keys[index], to: &out)
                out.append(UInt8(ascii: ":"))
                children[index].write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array:
            out.append(UInt8(ascii: "["))
            for index in children.indices {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                children[index].write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    /// A scalar member. Keys are not searched for repeats: a synthesized `encode(to:)` writes
    /// each key once.
    func member(_ key: String, _ scalar: JSONValue) {
        becomeObject()
        keys.append(key)
        children.append(.scalar(scalar))
    }

    /// A member that encodes itself into a slot of its own.
    func member(_ key: String) -> Slot {
        becomeObject()
        let slot = Slot()
        keys.append(key)
        children.append(.slot(slot))
        return slot
    }

    func element(_ scalar: JSONValue) {
        becomeArray()
        children.append(.scalar(scalar))
    }

    func element() -> Slot {
        becomeArray()
        let slot = Slot()
        children.append(.slot(slot))
        return slot
    }

    func becomeObject() {
        if kind != .object {
            kind = .object
            keys = []
            children = []
        }
    }

    func becomeArray() {
        if kind != .array {
            kind = .array
            children = []
        }
    }

    var count: Int { kind == .array ? children.count : 0 }

    /// A value written without a slot of its own; nil for anything that encodes itself.
    static func scalar(_ value: some Encodable) -> JSONValue? {
        switch value {
        case let json as JSONValue: json
        case let string as String: .string(string)
        case let int as Int: .int(Int64(int))
        case let int as Int64: .int(int)
        case let bool as Bool: .bool(bool)
        case let double as Double: .double(double)
        // A dictionary encodes in hash order, which changes from run to run: sorted, the same
        // task renders the same bytes every time.
        case let map as [String: String]: JSONValue(stringMap: map)
        default: nil
        }
    }
}

// MARK: - Encoder and containers

/// `codingPath` stays empty: it only serves error messages, nothing here fails, and an array
/// per encoded field was a fifth of the encoding time.
private struct SlotEncoder: Encoder {
    let slot: Slot
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        slot.becomeObject()
        return KeyedEncodingContainer(KeyedSlots<Key>(slot: slot, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        slot.becomeArray()
        return UnkeyedSlots(slot: slot, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleSlot(slot: slot, codingPath: codingPath) }
}

private struct KeyedSlots<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let slot: Slot
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { slot.member(key.stringValue, .null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try encodeValue(value, forKey: key) }

    private func encodeValue<T: Encodable>(_ value: T, forKey key: Key) throws {
        if let scalar = Slot.scalar(value) {
            slot.member(key.stringValue, scalar)
        } else {
            try value.encode(to: SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath))
        }
    }

    // The primitive overloads go the generic way: `store` keeps scalars without a detour.
    mutating func encode(_ value: Bool, forKey key: Key) throws { slot.member(key.stringValue, .bool(value)) }
    mutating func encode(_ value: String, forKey key: Key) throws { slot.member(key.stringValue, .string(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { slot.member(key.stringValue, .double(value)) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { slot.member(key.stringValue, .int(Int64(value))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { slot.member(key.stringValue, .int(value)) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try encodeValue(value, forKey: key) }

    /// Every `encodeIfPresent` overload lands here: nil is `null`, or left out when the key says so.
    private mutating func encodeOptional<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNilUnlessOmitted(forKey: key) }
    }

    private mutating func encodeNilUnlessOmitted(forKey key: Key) throws {
        if !Key.isOmittedWhenNil(key) { try encodeNil(forKey: key) }
    }

    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNilUnlessOmitted(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNilUnlessOmitted(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNilUnlessOmitted(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNilUnlessOmitted(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNilUnlessOmitted(forKey: key) }
    }
    mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { SlotEncoder(slot: slot.member("super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath)
    }
}

private struct UnkeyedSlots: UnkeyedEncodingContainer {
    let slot: Slot
    let codingPath: [any CodingKey]
    var count: Int { slot.count }

    mutating func encodeNil() throws { slot.element(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws { try append(value) }

    private func append<T: Encodable>(_ value: T) throws {
        if let scalar = Slot.scalar(value) {
            slot.element(scalar)
        } else {
            try value.encode(to: SlotEncoder(slot: slot.element(), codingPath: codingPath))
        }
    }

    mutating func encode(_ value: Bool) throws { try append(value) }
    mutating func encode(_ value: String) throws { try append(value) }
    mutating func encode(_ value: Double) throws { try append(value) }
    mutating func encode(_ value: Float) throws { try append(value) }
    mutating func encode(_ value: Int) throws { try append(value) }
    mutating func encode(_ value: Int8) throws { try append(value) }
    mutating func encode(_ value: Int16) throws { try append(value) }
    mutating func encode(_ value: Int32) throws { try append(value) }
    mutating func encode(_ value: Int64) throws { try append(value) }
    mutating func encode(_ value: UInt) throws { try append(value) }
    mutating func encode(_ value: UInt8) throws { try append(value) }
    mutating func encode(_ value: UInt16) throws { try append(value) }
    mutating func encode(_ value: UInt32) throws { try append(value) }
    mutating func encode(_ value: UInt64) throws { try append(value) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        return SlotEncoder(slot: slot.element(), codingPath: codingPath).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        return SlotEncoder(slot: slot.element(), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { SlotEncoder(slot: slot.element(), codingPath: codingPath) }
}

private struct SingleSlot: SingleValueEncodingContainer {
    let slot: Slot
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { slot.set(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        if let scalar = Slot.scalar(value) {
            slot.set(scalar)
        } else {
            try value.encode(to: SlotEncoder(slot: slot, codingPath: codingPath))
        }
    }
    mutating func encode(_ value: Bool) throws { slot.set(.bool(value)) }
    mutating func encode(_ value: String) throws { slot.set(.string(value)) }
    mutating func encode(_ value: Double) throws { slot.set(.double(value)) }
    mutating func encode(_ value: Float) throws { slot.set(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { slot.set(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { slot.set(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { slot.set(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { slot.set(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { slot.set(.int(value)) }
    mutating func encode(_ value: UInt) throws { slot.set(Self.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { slot.set(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { slot.set(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { slot.set(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { slot.set(Self.unsigned(value)) }

    /// Past `Int64.max` only a double can hold it (as JavaScript would read it anyway).
    private static func unsigned(_ value: UInt64) -> JSONValue { Int64(exactly: value).map(JSONValue.int) ?? .double(Double(value)) }
}
