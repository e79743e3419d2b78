/// Encodes any `Encodable` into a `JSONValue`, so the wire types render through the same
/// order-preserving writer as every other body. Two things `JSONEncoder` does not do, and the
/// API needs: members come out in the order the type declares them (SPEC's field order, which
/// people read in `curl` output), and a nil optional is written as `null` — every field is
/// always present (SPEC §2) — unless its key is listed in `OmittedWhenNil`.
public enum JSONValueEncoder {
    /// Only the API's own wire types come here, and their `encode(to:)` never throw (this
    /// encoder itself throws nothing); a throw would be a programming error, caught by tests.
    public static func encode(_ value: some Encodable) -> JSONValue {
        if let json = value as? JSONValue { return json }
        let root = Slot()
        do {
            try value.encode(to: SlotEncoder(slot: root, codingPath: []))
        } catch {
            preconditionFailure("a wire type threw while encoding: \(error)")
        }
        return root.resolved
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

/// One value under construction: a finished scalar, or a container still being filled.
private final class Slot {
    enum Content {
        case value(JSONValue)
        case object(keys: [String], slots: [Slot])
        case array([Slot])
    }
    var content = Content.value(.null)

    var resolved: JSONValue {
        switch content {
        case .value(let value): value
        case .object(let keys, let slots): .object(zip(keys, slots).map { JSONValue.Member($0, $1.resolved) })
        case .array(let slots): .array(slots.map(\.resolved))
        }
    }

    /// A new member slot (a repeated key replaces the earlier one, as a JSON object would).
    func member(_ key: String) -> Slot {
        guard case .object(var keys, var slots) = content else {
            let slot = Slot()
            content = .object(keys: [key], slots: [slot])
            return slot
        }
        let slot = Slot()
        if let index = keys.firstIndex(of: key) {
            slots[index] = slot
        } else {
            keys.append(key)
            slots.append(slot)
        }
        content = .object(keys: keys, slots: slots)
        return slot
    }

    func element() -> Slot {
        let slot = Slot()
        if case .array(var slots) = content {
            slots.append(slot)
            content = .array(slots)
        } else {
            content = .array([slot])
        }
        return slot
    }

    func becomeObject() { if case .object = content {} else { content = .object(keys: [], slots: []) } }
    func becomeArray() { if case .array = content {} else { content = .array([]) } }
    var count: Int { if case .array(let slots) = content { slots.count } else { 0 } }

    /// Scalars are stored at once; anything else encodes itself into this slot.
    func store(_ value: some Encodable, codingPath: [any CodingKey]) throws {
        switch value {
        case let json as JSONValue: content = .value(json)
        case let string as String: content = .value(.string(string))
        case let int as Int: content = .value(.int(Int64(int)))
        case let int as Int64: content = .value(.int(int))
        case let bool as Bool: content = .value(.bool(bool))
        case let double as Double: content = .value(.double(double))
        // A dictionary encodes in hash order, which changes from run to run: sorted, the same
        // task renders the same bytes every time.
        case let map as [String: String]: content = .value(JSONValue(stringMap: map))
        default: try value.encode(to: SlotEncoder(slot: self, codingPath: codingPath))
        }
    }
}

private struct IndexKey: CodingKey {
    var stringValue: String { String(intValue ?? 0) }
    var intValue: Int?
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

// MARK: - Encoder and containers

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

    mutating func encodeNil(forKey key: Key) throws { slot.member(key.stringValue).content = .value(.null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try encodeValue(value, forKey: key) }

    private func encodeValue<T: Encodable>(_ value: T, forKey key: Key) throws {
        try slot.member(key.stringValue).store(value, codingPath: codingPath + [key])
    }

    // The primitive overloads go the generic way: `store` keeps scalars without a detour.
    mutating func encode(_ value: Bool, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: String, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try encodeValue(value, forKey: key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try encodeValue(value, forKey: key) }

    /// Every `encodeIfPresent` overload lands here: nil is `null`, or left out when the key says so.
    private mutating func encodeOptional<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value {
            try encode(value, forKey: key)
        } else if !Key.isOmittedWhenNil(key) {
            try encodeNil(forKey: key)
        }
    }

    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { SlotEncoder(slot: slot.member("super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key])
    }
}

private struct UnkeyedSlots: UnkeyedEncodingContainer {
    let slot: Slot
    let codingPath: [any CodingKey]
    var count: Int { slot.count }

    mutating func encodeNil() throws { slot.element().content = .value(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [IndexKey(count)]
        try slot.element().store(value, codingPath: path)
    }

    mutating func encode(_ value: Bool) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: String) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: Double) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: Float) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int8) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int16) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int32) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: Int64) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt8) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt16) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt32) throws { try slot.element().store(value, codingPath: codingPath) }
    mutating func encode(_ value: UInt64) throws { try slot.element().store(value, codingPath: codingPath) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = codingPath + [IndexKey(count)]
        return SlotEncoder(slot: slot.element(), codingPath: path).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = codingPath + [IndexKey(count)]
        return SlotEncoder(slot: slot.element(), codingPath: path).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { SlotEncoder(slot: slot.element(), codingPath: codingPath) }
}

private struct SingleSlot: SingleValueEncodingContainer {
    let slot: Slot
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { slot.content = .value(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try slot.store(value, codingPath: codingPath) }
    mutating func encode(_ value: Bool) throws { slot.content = .value(.bool(value)) }
    mutating func encode(_ value: String) throws { slot.content = .value(.string(value)) }
    mutating func encode(_ value: Double) throws { slot.content = .value(.double(value)) }
    mutating func encode(_ value: Float) throws { slot.content = .value(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { slot.content = .value(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { slot.content = .value(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { slot.content = .value(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { slot.content = .value(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { slot.content = .value(.int(value)) }
    mutating func encode(_ value: UInt) throws { slot.content = .value(Self.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { slot.content = .value(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { slot.content = .value(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { slot.content = .value(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { slot.content = .value(Self.unsigned(value)) }

    /// Past `Int64.max` only a double can hold it (as JavaScript would read it anyway).
    private static func unsigned(_ value: UInt64) -> JSONValue { Int64(exactly: value).map(JSONValue.int) ?? .double(Double(value)) }
}
