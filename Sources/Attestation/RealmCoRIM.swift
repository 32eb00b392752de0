import FirmwareCore

/// Why reference values cannot be written in a CoRIM layout.
public enum CoRIMError: Error, Equatable, CustomStringConvertible {
  /// The legacy layout needs every REM; this one is not known in advance.
  case remUnknown(Int)

  public var description: String {
    switch self {
    case .remUnknown(let index):
      return "the legacy CoRIM layout needs all four REMs, and REM\(index) is not known in advance (use the current layout, where a missing REM matches any value)"
    }
  }
}

/// An unsigned CoRIM (tag 501) holding one CoMID (tag 506) with a Realm's reference values, as
/// Veraison's Arm CCA scheme reads them (draft-ydb-rats-cca-endorsements; veraison/corim
/// `profiles/cca`), built as a ``CBORValue`` and encoded deterministically.
public struct RealmCoRIM {
  /// Which Veraison releases the CoRIM is for.
  public enum Layout: String, CaseIterable, Sendable {
    /// Veraison services v0.0.2605 and later: class-id 560(RIM), measurements keyed `cca.rim`,
    /// `cca.rem0`...`cca.rem3` (the known ones) and `cca.rpv`, profile
    /// 32("tag:arm.com,2025:cca_realm#1.0.0").
    case current
    /// Veraison services up to v0.0.2604: instance 560(RIM), one measurement with raw-value
    /// 560(RPV) and integrity-registers {rim, rem0...rem3}, profile "http://arm.com/cca/realm/1".
    case legacy

    /// The CoRIM profile (a URI).
    public var profile: String {
      switch self {
      case .current: return "tag:arm.com,2025:cca_realm#1.0.0"
      case .legacy: return "http://arm.com/cca/realm/1"
      }
    }
  }

  /// The CBOR tags and map keys used (RFC 9393 / draft-ietf-rats-corim).
  enum Key {
    static let corimTag: UInt64 = 501
    static let comidTag: UInt64 = 506
    static let uriTag: UInt64 = 32
    /// tagged-bytes: class-id, instance and raw-value as arbitrary bytes.
    static let taggedBytes: UInt64 = 560
    // corim-map
    static let corimID: UInt64 = 0
    static let corimTags: UInt64 = 1
    static let corimProfile: UInt64 = 3
    // concise-mid-tag
    static let tagIdentity: UInt64 = 1
    static let triples: UInt64 = 4
    static let tagID: UInt64 = 0
    static let referenceTriples: UInt64 = 0
    // environment-map, class-map
    static let environmentClass: UInt64 = 0
    static let environmentInstance: UInt64 = 1
    static let classID: UInt64 = 0
    // measurement-map, measurement-values-map
    static let mkey: UInt64 = 0
    static let mval: UInt64 = 1
    static let digests: UInt64 = 2
    static let rawValue: UInt64 = 4
    static let integrityRegisters: UInt64 = 14
  }

  /// The reference values written.
  public let values: RealmReferenceValues
  public let layout: Layout

  public init(values: RealmReferenceValues, layout: Layout) throws(CoRIMError) {
    if layout == .legacy, let missing = values.rems.firstIndex(where: { $0 == nil }) { throw .remUnknown(missing) }
    self.values = values
    self.layout = layout
  }

  /// The Named Information hash algorithm identifier of the realm's algorithm (RFC 6920: 1
  /// sha-256, 8 sha-512); Veraison reads only integers before veraison/corim 88dde1b.
  static func namedInformationID(_ algorithm: RealmHashAlgorithm) -> UInt64 {
    algorithm == .sha256 ? 1 : 8
  }

  /// The CoRIM's bytes.
  public func encoded() -> [UInt8] {
    let (comid, id) = comidMap()
    return CBORValue.tagged(Key.corimTag, .map([
      (.unsigned(Key.corimID), .text(Self.uuidString(id))),
      (.unsigned(Key.corimTags), .array([.tagged(Key.comidTag, .bytes(comid.encoded()))])),
      (.unsigned(Key.corimProfile), profileItem()),
    ])).encoded()
  }

  /// A profile is a URI: tag 32 for the current Veraison, an untagged text string for the releases
  /// that read the legacy layout (their eat.Profile).
  func profileItem() -> CBORValue {
    layout == .current ? .tagged(Key.uriTag, .text(layout.profile)) : .text(layout.profile)
  }

  /// The CoMID and its tag-id, derived from its triples: the same values always give the same
  /// tag-id, and different values a different one. The CoRIM's id is the same UUID.
  func comidMap() -> (CBORValue, [UInt8]) {
    let triples = CBORValue.map([(.unsigned(Key.referenceTriples), .array([referenceTriple()]))])
    let id = tagID(triples: triples.encoded())
    return (.map([(.unsigned(Key.tagIdentity), .map([(.unsigned(Key.tagID), .bytes(id))])), (.unsigned(Key.triples), triples)]), id)
  }

  /// A version-8 UUID (RFC 9562 section 5.8) from the SHA-256 of the encoded triples.
  func tagID(triples: [UInt8]) -> [UInt8] {
    var id = Array(SHA256.hash(ByteString.of("realm-run CoMID tag-id") + triples).prefix(16))
    id[6] = (id[6] & 0x0F) | 0x80
    id[8] = (id[8] & 0x3F) | 0x80
    return id
  }

  /// The UUID's text form (RFC 9562: 8-4-4-4-12 lower-case hex digits).
  static func uuidString(_ id: [UInt8]) -> String {
    [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { ByteString.hex(bytes: Array(id[$0])) }.joined(separator: "-")
  }

  /// [environment, [measurements]].
  func referenceTriple() -> CBORValue {
    let rim = CBORValue.tagged(Key.taggedBytes, .bytes(values.rim))
    switch layout {
    case .current:
      let environment = CBORValue.map([(.unsigned(Key.environmentClass), .map([(.unsigned(Key.classID), rim)]))])
      var measurements = [measurement(key: "cca.rim", digest: values.rim)]
      for (i, rem) in values.rems.enumerated() {
        if let rem { measurements.append(measurement(key: "cca.rem\(i)", digest: rem)) }
      }
      measurements.append(.map([
        (.unsigned(Key.mkey), .text("cca.rpv")),
        (.unsigned(Key.mval), .map([(.unsigned(Key.rawValue), .tagged(Key.taggedBytes, .bytes(values.personalization)))])),
      ]))
      return .array([environment, .array(measurements)])
    case .legacy:
      let environment = CBORValue.map([(.unsigned(Key.environmentInstance), rim)])
      var registers: [(key: CBORValue, value: CBORValue)] = [(.text("rim"), digests(values.rim))]
      for (i, rem) in values.rems.enumerated() {
        registers.append((.text("rem\(i)"), digests(rem ?? [])))
      }
      let measurement = CBORValue.map([
        (.unsigned(Key.mval), .map([
          (.unsigned(Key.rawValue), .tagged(Key.taggedBytes, .bytes(values.personalization))),
          (.unsigned(Key.integrityRegisters), .map(registers)),
        ]))
      ])
      return .array([environment, .array([measurement])])
    }
  }

  /// { mkey: key, mval: { digests: [[alg, digest]] } }.
  func measurement(key: String, digest: [UInt8]) -> CBORValue {
    .map([(.unsigned(Key.mkey), .text(key)), (.unsigned(Key.mval), .map([(.unsigned(Key.digests), digests(digest))]))])
  }

  /// [[alg, digest]]: exactly one entry.
  func digests(_ digest: [UInt8]) -> CBORValue {
    .array([.array([.unsigned(Self.namedInformationID(values.algorithm)), .bytes(digest)])])
  }
}
