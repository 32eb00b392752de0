import FirmwareCore
import Testing
@testable import Attestation

/// `measure --corim`: decoded with the token decoder (`CBORValue.decode`, libcbor) and read as
/// Veraison's Arm CCA scheme reads it.
@Suite struct RealmCoRIMTests {
  static let rim = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 9 &+ 1) }
  static let rems: [[UInt8]?] = [
    [UInt8](repeating: 0xA0, count: 32), [UInt8](repeating: 0xA1, count: 32), nil, [UInt8](repeating: 0, count: 32),
  ]
  static let rpv = RealmReferenceValues.paddedPersonalization(Array("realm one".utf8))!

  static func values(rems: [[UInt8]?] = rems) -> RealmReferenceValues {
    RealmReferenceValues(algorithm: .sha256, rim: rim, rems: rems, personalization: rpv)
  }

  /// The CoRIM map and its one CoMID, decoded.
  static func decode(_ bytes: [UInt8]) throws -> (corim: CBORValue, comid: CBORValue) {
    let corim = try #require(try CBORValue.decode(bytes).content(ofTag: 501), "not a tag-501 CoRIM")
    let tags = try #require(corim[1]).elements
    try #require(tags.count == 1)
    guard case .bytes(let comidBytes)? = tags[0].content(ofTag: 506) else {
      Issue.record("the CoRIM's tag is not 506(bstr)")
      throw CCATokenError.invalid(context: "CoRIM tags", problem: "not 506(bstr)")
    }
    return (corim, try CBORValue.decode(comidBytes))
  }

  @Test func currentLayoutCarriesTheRealmsValuesAsVeraisonReadsThem() throws {
    let bytes = try RealmCoRIM(values: Self.values(), layout: .current).encoded()
    #expect(Array(bytes.prefix(3)) == [0xD9, 0x01, 0xF5])  // 501 in two bytes: what Veraison sniffs
    let (corim, comid) = try Self.decode(bytes)
    #expect(corim[3] == .tagged(32, .text("tag:arm.com,2025:cca_realm#1.0.0")))
    #expect(corim.keys == [.unsigned(0), .unsigned(1), .unsigned(3)])

    // tag-identity: a 16-byte UUID (version 8), also the CoRIM's id
    guard case .bytes(let tagID)? = comid[1]?[0] else { Issue.record("no tag-id"); return }
    #expect(tagID.count == 16 && tagID[6] >> 4 == 8 && tagID[8] >> 6 == 2)
    guard case .text(let corimID)? = corim[0] else { Issue.record("no corim-id"); return }
    #expect(corimID.replacingHyphens == tagID.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())

    let triples = try #require(comid[4]?[0]).elements
    try #require(triples.count == 1)
    let triple = triples[0].elements
    try #require(triple.count == 2)
    #expect(triple[0] == .map([(.unsigned(0), .map([(.unsigned(0), .tagged(560, .bytes(Self.rim)))]))]))
    let measurements = triple[1].elements
    func digests(_ digest: [UInt8]) -> CBORValue {
      .map([(.unsigned(2), .array([.array([.unsigned(1), .bytes(digest)])]))])
    }
    // the known REMs only: REM2 is a wildcard
    #expect(measurements.map { $0[0] } == ["cca.rim", "cca.rem0", "cca.rem1", "cca.rem3", "cca.rpv"].map { CBORValue?.some(.text($0)) })
    #expect(measurements[0][1] == digests(Self.rim))
    #expect(measurements[1][1] == digests(Self.rems[0]!))
    #expect(measurements[2][1] == digests(Self.rems[1]!))
    #expect(measurements[3][1] == digests(Self.rems[3]!))
    #expect(measurements[4][1] == .map([(.unsigned(4), .tagged(560, .bytes(Self.rpv)))]))
    expectDeterministic(bytes)
  }

  @Test func sha512DigestsUseNamedInformationID8() throws {
    let digest = [UInt8](repeating: 0x55, count: 64)
    let values = RealmReferenceValues(algorithm: .sha512, rim: digest, rems: [digest, nil, nil, nil])
    let (_, comid) = try Self.decode(try RealmCoRIM(values: values, layout: .current).encoded())
    let measurements = try #require(comid[4]?[0]?.elements.first?.elements.last).elements
    #expect(measurements.count == 3)
    for m in measurements.prefix(2) {
      #expect(m[1]?[2] == .array([.array([.unsigned(8), .bytes(digest)])]))
    }
  }

  @Test func legacyLayoutIsTheOldVeraisonOne() throws {
    let rems: [[UInt8]?] = (0..<4).map { [UInt8](repeating: UInt8(0xB0 + $0), count: 32) }
    let bytes = try RealmCoRIM(values: Self.values(rems: rems), layout: .legacy).encoded()
    let (corim, comid) = try Self.decode(bytes)
    #expect(corim[3] == .text("http://arm.com/cca/realm/1"))
    let triple = try #require(comid[4]?[0]?.elements.first).elements
    #expect(triple[0] == .map([(.unsigned(1), .tagged(560, .bytes(Self.rim)))]))  // instance = RIM
    let measurements = triple[1].elements
    try #require(measurements.count == 1)
    let mval = try #require(measurements[0][1])
    #expect(mval[4] == .tagged(560, .bytes(Self.rpv)))
    let registers = try #require(mval[14])
    #expect(registers[text: "rim"] == .array([.array([.unsigned(1), .bytes(Self.rim)])]))
    for i in 0..<4 {
      #expect(registers[text: "rem\(i)"] == .array([.array([.unsigned(1), .bytes(rems[i]!)])]))
    }
    // encoded-key order: "rim" (0x63...) sorts after "rem0"...: shorter keys first, then bytes
    #expect(registers.keys == ["rim", "rem0", "rem1", "rem2", "rem3"].map { .text($0) })
    expectDeterministic(bytes)
  }

  @Test func legacyLayoutRefusesAnUnknownREM() {
    #expect(throws: CoRIMError.remUnknown(2)) { _ = try RealmCoRIM(values: Self.values(), layout: .legacy) }
    #expect(CoRIMError.remUnknown(2).description.contains("REM2 is not known"))
  }

  /// The same values give the same bytes, and the tag-id follows the values.
  @Test func encodingIsStableAndTheTagIDFollowsTheValues() throws {
    let a = try RealmCoRIM(values: Self.values(), layout: .current).encoded()
    #expect(try RealmCoRIM(values: Self.values(), layout: .current).encoded() == a)
    var other = Self.values()
    other.personalization[0] ^= 1
    let (_, comidA) = try Self.decode(a)
    let (_, comidB) = try Self.decode(try RealmCoRIM(values: other, layout: .current).encoded())
    #expect(comidA[1] != comidB[1])
  }

  /// Map pairs given in any order encode to the same, sorted bytes; integers take their shortest
  /// form whatever their value.
  @Test func mapsSortTheirKeysAndIntegersAreShortest() throws {
    let pairs: [(UInt64, UInt64)] = [(24, 1), (0, 0x1_0000_0000), (256, 23), (65536, 255), (23, 256)]
    var encodings: Set<[UInt8]> = []
    for order in [pairs, pairs.reversed(), [pairs[2], pairs[0], pairs[4], pairs[1], pairs[3]]] {
      encodings.insert(CBORValue.map(order.map { (.unsigned($0.0), .unsigned($0.1)) }).encoded())
    }
    #expect(encodings.count == 1)
    let bytes = try #require(encodings.first)
    expectDeterministic(bytes)
    let decoded = try CBORValue.decode(bytes)
    #expect(decoded.keys == [0, 23, 24, 256, 65536].map { .unsigned($0) })
    #expect(bytes.count == 1 + (1 + 9) + (1 + 3) + (2 + 1) + (3 + 1) + (5 + 2))
  }

  @Test func rpvIsZeroPaddedTo64Bytes() {
    let padded = RealmReferenceValues.paddedPersonalization(Array("realm one".utf8))
    #expect(padded?.count == 64)
    #expect(padded.map { Array($0.prefix(9)) } == Array("realm one".utf8))
    #expect(padded?.dropFirst(9).allSatisfy { $0 == 0 } == true)
    #expect(RealmReferenceValues.paddedPersonalization([]) == [UInt8](repeating: 0, count: 64))
    #expect(RealmReferenceValues.paddedPersonalization([UInt8](repeating: 1, count: 64))?.count == 64)
    #expect(RealmReferenceValues.paddedPersonalization([UInt8](repeating: 1, count: 65)) == nil)
  }

  @Test func jsonFieldsHaveFourREMsAndTheRPV() {
    let fields = Self.values().jsonFields
    let hex = { (b: [UInt8]) in b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
    #expect(fields == #""rems":["\#(hex(Self.rems[0]!))","\#(hex(Self.rems[1]!))",null,"\#(hex(Self.rems[3]!))"],"rpv":"\#(hex(Self.rpv))""#)
    #expect(hex(Self.rpv).count == 128)
  }
}

extension String {
  var replacingHyphens: String { String(filter { $0 != "-" }) }
}
