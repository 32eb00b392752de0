import Attestation
import Crypto
import FirmwareCore
import Testing

@Suite struct CCATokenDecodingTests {
  @Test(arguments: [CCAToken.Form.cmwCollection, .eatCollection])
  func decodesBothTopLevelForms(form: CCAToken.Form) throws {
    var built = TestToken()
    built.form = form
    let token = try CCAToken(decoding: built.encoded)
    #expect(token.form == form)
    #expect(token.realmClaims.rim == built.rim)
    #expect(token.realmClaims.rems == built.rems)
    #expect(token.realmClaims.challenge == built.challenge)
    #expect(token.realmClaims.personalization == built.personalization)
    #expect(token.realmClaims.hashAlgorithm == "sha-256")
    #expect(token.realmClaims.profile == "tag:arm.com,2023:realm#1.0.0")
    #expect(token.realmClaims.attestationKey.encoded == built.rakBytes)
    #expect(token.realmClaims.attestationKey.point == Array(built.realmKey.publicKey.x963Representation))
    #expect(token.platformClaims.lifecycle == 0x3000)
    #expect(token.platform.signature.count == 96 && token.realm.signature.count == 96)
  }

  /// Without a profile claim the RAK is the raw point (the legacy layout).
  @Test func readsALegacyRawPointRAK() throws {
    var built = TestToken()
    built.profile = nil
    let token = try CCAToken(decoding: built.encoded)
    #expect(token.realmClaims.profile == nil)
    #expect(token.realmClaims.attestationKey.encoded.count == 97)
    #expect(token.realmClaims.attestationKey.point == Array(built.realmKey.publicKey.x963Representation))
  }

  /// TF-RMM 0.9.0+ (RMM 2.0): the 2.0 profile, a realm instance ID and the MEC policy as an integer.
  @Test func readsRMM2Claims() throws {
    var built = TestToken()
    built.profile = "tag:arm.com,2024:realm#2.0.0"
    built.extraRealmClaims = [(.int(256), .bytes([1] + [UInt8](repeating: 7, count: 32))), (.int(44243), .int(1))]
    var claims = try CCAToken(decoding: built.encoded).realmClaims
    #expect(claims.profile == "tag:arm.com,2024:realm#2.0.0")
    #expect(claims.instanceID?.count == 33 && claims.mecPolicy == "private")
    built.extraRealmClaims = [(.int(44243), .text("shared"))]
    claims = try CCAToken(decoding: built.encoded).realmClaims
    #expect(claims.instanceID == nil && claims.mecPolicy == "shared")
    built.extraRealmClaims = [(.int(44243), .array([]))]
    #expect(throws: CCATokenError.invalid(context: "realm token MEC policy (44243)", problem: "not a text string")) {
      try CCAToken(decoding: built.encoded)
    }
  }

  /// Every prefix of a good token is an error, never a crash or a token.
  @Test func everyTruncationIsATypedError() throws {
    let bytes = TestToken().encoded
    for length in 0..<bytes.count {
      #expect(throws: CCATokenError.self) { try CCAToken(decoding: Array(bytes[0..<length])) }
    }
    #expect(throws: CCATokenError.malformedCBOR("1 bytes after the item")) { try CCAToken(decoding: bytes + [0]) }
  }

  @Test func rejectsWrongTags() throws {
    var bytes = CBORValue.tagged(400, .map([])).encoded()
    #expect(throws: CCATokenError.wrongTag(context: "token", found: 400, expected: "907 or 399 (a CCA token collection)")) {
      try CCAToken(decoding: bytes)
    }
    bytes = CBORValue.map([]).encoded()
    #expect(throws: CCATokenError.wrongTag(context: "token", found: nil, expected: "907 or 399 (a CCA token collection)")) {
      try CCAToken(decoding: bytes)
    }
    // A COSE_Sign1 under tag 17 (COSE_Mac0) instead of 18.
    let good = TestToken().encoded
    guard case .tagged(907, .map(var entries)) = try CBORValue.decode(good),
          case .array(let record) = entries[1].value, case .bytes(let realm) = record[1],
          case .tagged(18, let sign1) = try CBORValue.decode(realm) else {
      Issue.record("the test token is not what the builder makes")
      return
    }
    entries[1].value = .array([record[0], .bytes(CBORValue.tagged(17, sign1).encoded())])
    #expect(throws: CCATokenError.wrongTag(context: "realm token", found: 17, expected: "18 (COSE_Sign1)")) {
      try CCAToken(decoding: CBORValue.tagged(907, .map(entries)).encoded())
    }
    // A 399 collection's entries are byte strings, not CMW records.
    #expect(throws: CCATokenError.invalid(context: "platform token", problem: "not a byte string")) {
      try CCAToken(decoding: CBORValue.tagged(399, .map(entries)).encoded())
    }
  }

  @Test func rejectsIndefiniteLengths() {
    // 907({44234: [_ ...]}): an indefinite-length array where the CMW record is.
    #expect(throws: CCATokenError.malformedCBOR("an indefinite-length array at offset 7")) {
      try CCAToken(decoding: [0xd9, 0x03, 0x8b, 0xa1, 0x19, 0xac, 0xca, 0x9f, 0x19, 0x01, 0x07, 0x40, 0xff])
    }
    for bytes: [UInt8] in [[0x5f, 0x41, 0x00, 0xff], [0x7f, 0x61, 0x61, 0xff], [0xbf, 0x01, 0x02, 0xff], [0xff]] {
      #expect(throws: CCATokenError.self) { try CBORValue.decode(bytes) }
    }
  }

  @Test func rejectsHugeLengthsWithoutAllocating() {
    let cases: [[UInt8]] = [
      [0xd9, 0x01, 0x8f, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],  // a 2^64-byte string
      [0xd9, 0x01, 0x8f, 0x9b, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00],  // a 2^28-item array
      [0xd9, 0x01, 0x8f, 0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],  // a 2^63-pair map
      [0xd9, 0x01, 0x8f, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],  // a 2^64-1-item array (negative as size_t)
      [0xd9, 0x01, 0x8f, 0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],  // a 2^64-1-pair map
      [0x9a, 0x00, 0x01, 0x00, 0x00] + [UInt8](repeating: 0, count: 100),  // 65536 items in 100 bytes
    ]
    for bytes in cases {
      #expect(throws: CCATokenError.self) { try CCAToken(decoding: bytes) }
    }
    #expect(throws: CCATokenError.malformedCBOR("a container of 65536 items in 105 bytes at offset 0")) {
      try CBORValue.decode(cases[5])
    }
    #expect(throws: CCATokenError.tooLarge(65537)) { try CCAToken(decoding: [UInt8](repeating: 0, count: 65537)) }
    let deep = [UInt8](repeating: 0x81, count: 40) + [0x00]
    #expect(throws: CCATokenError.malformedCBOR("nested deeper than 16 at offset 16")) { try CBORValue.decode(deep) }
  }

  @Test func rejectsMissingClaimsWrongSizesAndDuplicateKeys() throws {
    var built = TestToken()
    built.rems = Array(built.rems[0..<3])
    #expect(throws: CCATokenError.invalid(context: "realm token REMs (44239)", problem: "3 entries, not 4")) {
      try CCAToken(decoding: built.encoded)
    }
    built = TestToken()
    built.rim = [1, 2, 3]
    #expect(throws: CCATokenError.invalid(context: "realm token RIM (44238)", problem: "3 bytes, not 32 or 48 or 64")) {
      try CCAToken(decoding: built.encoded)
    }
    built = TestToken()
    built.challenge = [UInt8](repeating: 1, count: 32)
    #expect(throws: CCATokenError.invalid(context: "realm token challenge (10)", problem: "32 bytes, not 64")) {
      try CCAToken(decoding: built.encoded)
    }
    // A claims map without the RIM, and one with the RIM twice.
    let key = P384.Signing.PrivateKey()
    let good = TestToken()
    for (claims, error) in [
      (good.realmClaims.filter { $0.key != .int(44238) }, CCATokenError.missing(context: "realm token", key: 44238, name: "RIM")),
      (good.realmClaims + [(.int(44238), .bytes(good.rim))], CCATokenError.duplicateKey(context: "realm token claims", key: "44238")),
    ] {
      let realm = TestToken.sign(.map(claims), with: key, flip: false)
      let platform = TestToken.sign(.map(good.platformClaims), with: key, flip: false)
      let bytes = CBORValue.tagged(399, .map([(.int(44234), .bytes(platform)), (.int(44241), .bytes(realm))])).encoded()
      #expect(throws: error) { try CCAToken(decoding: bytes) }
    }
  }

  /// The sample of draft-ffm-rats-cca-token-00 (veraison/rust-ccatoken testdata, see the fixture's README).
  @Test func decodesThePublishedSampleToken() throws {
    let token = try CCAToken(decoding: try Fixture.bytes("cca-token-draft-ffm-00.cbor"))
    #expect(token.form == .eatCollection)
    #expect(token.realmClaims.profile == "tag:arm.com,2023:realm#1.0.0")
    #expect(token.platformClaims.profile == "tag:arm.com,2023:cca_platform#1.0.0")
    #expect(token.realmClaims.hashAlgorithm == "sha-256")
    let rim = ByteString.hex(bytes: token.realmClaims.rim)
    #expect(rim.hasPrefix("311314ab") && rim.hasSuffix("0d49"))
    #expect(ByteString.hex(bytes: token.platformClaims.challenge).hasPrefix("0d22e08a"))
    // The Sig_structure as the reference note gives its start: ["Signature1", h'a1013822', h'', payload].
    let signed = token.realm.signedBytes
    #expect(Array(signed.prefix(18)) == [0x84, 0x6a] + Array("Signature1".utf8) + [0x44, 0xa1, 0x01, 0x38, 0x22, 0x40])
    #expect(signed.count == 18 + 3 + token.realm.payload.count && signed[18] == 0x59)
  }
}
