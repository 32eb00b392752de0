import Attestation
import Crypto
import FirmwareCore
import Foundation
import Testing

@Suite struct VerifyTokenTests {
  func verdicts(_ built: TestToken, reference: TokenReference? = nil, cpak: Bool = true) throws -> [ClaimVerdict] {
    let verifier = cpak ? built.verifier : TokenVerifier()
    return verifier.verify(try CCAToken(decoding: built.encoded), against: reference ?? built.reference)
  }

  @Test(arguments: [CCAToken.Form.cmwCollection, .eatCollection], [true, false])
  func aGoodTokenVerifies(form: CCAToken.Form, legacyRAK: Bool) throws {
    var built = TestToken()
    built.form = form
    if legacyRAK { built.profile = nil }
    let lines = try verdicts(built).map(\.description)
    #expect(lines == [
      "platform signature: ok (with the test CPAK)",
      "realm signature: ok",
      "binding: ok (platform challenge = sha-256 of the RAK)",
      "hash algorithm: match (sha-256)",
      "challenge: match",
      "RIM: match",
      "REM0: match", "REM1: match", "REM2: match", "REM3: match",
      "RPV: match",
    ])
  }

  @Test func withoutReferenceValuesOnlySignaturesAndBindingAreChecked() throws {
    let result = try verdicts(TestToken(), reference: TokenReference(), cpak: false)
    #expect(result["platform signature"]?.description == "platform signature: not checked (no CPAK given)")
    #expect(result["REM2"]?.description == "REM2: not checked (no reference value)")
    #expect(result["hash algorithm"]?.description == "hash algorithm: not checked (no reference; the token says sha-256)")
    #expect(result.allSatisfy { !$0.rejects })
    #expect(result.filter { $0.outcome == .ok }.count == 2)
  }

  @Test func aFlippedSignatureByteFails() throws {
    var built = TestToken()
    built.flipRealmSignature = true
    var result = try verdicts(built)
    #expect(result["realm signature"]?.outcome == .fails("does not verify with the token's RAK"))
    #expect(result.filter(\.rejects).count == 1)
    built = TestToken()
    built.flipPlatformSignature = true
    result = try verdicts(built)
    #expect(result["platform signature"]?.outcome == .fails("does not verify with the test CPAK"))
    #expect(result.filter(\.rejects).count == 1)
  }

  @Test func aTokenSignedByAnotherKeyFails() throws {
    var built = TestToken()
    built.realmSigner = P384.Signing.PrivateKey()
    #expect(try verdicts(built)["realm signature"]?.rejects == true)
    // The platform token signed with a key other than the CPAK given.
    built = TestToken()
    let other = TokenVerifier(platformKey: P384.Signing.PrivateKey().publicKey)
    let result = other.verify(try CCAToken(decoding: built.encoded), against: built.reference)
    #expect(result["platform signature"]?.rejects == true)
    #expect(result.filter(\.rejects).count == 1)
  }

  @Test func aBinderThatIsNotTheRAKsHashFails() throws {
    var built = TestToken()
    built.binder = Array(SHA256.hash(data: Array(P384.Signing.PrivateKey().publicKey.x963Representation)))
    let result = try verdicts(built)
    guard case .fails(let reason) = result["binding"]?.outcome else {
      Issue.record("binding: \(String(describing: result["binding"]))")
      return
    }
    #expect(reason.hasPrefix("the platform token's challenge \(ByteString.hex(bytes: built.binder!)) is not the sha-256 of the RAK"))
    #expect(result.filter(\.rejects).count == 1)
  }

  @Test func aChangedChallengeRIMOrREMDiffers() throws {
    let built = TestToken()
    var reference = built.reference
    reference.challenge = TokenReference.padded([1, 2, 3])
    reference.rim![0] ^= 0xff
    reference.rems[1] = [UInt8](repeating: 0x99, count: 32)
    reference.rems[3] = nil
    reference.personalization = TokenReference.padded(Array("another realm".utf8))
    let result = try verdicts(built, reference: reference)
    #expect(result["challenge"]?.rejects == true)
    #expect(result["RIM"]?.outcome == .differs(
      expected: "ee" + String(repeating: "11", count: 31), token: String(repeating: "11", count: 32)))
    #expect(result["REM0"]?.outcome == .match)
    #expect(result["REM1"]?.description
      == "REM1: differs (expected \(String(repeating: "99", count: 32)), token \(String(repeating: "21", count: 32)))")
    #expect(result["REM3"]?.description == "REM3: not checked (no reference value)")
    #expect(result["RPV"]?.rejects == true)
    #expect(result.filter(\.rejects).map(\.claim) == ["challenge", "RIM", "REM1", "RPV"])
  }

  @Test func aDifferentHashAlgorithmDiffers() throws {
    var built = TestToken()
    built.algorithm = "sha-512"
    built.rim = [UInt8](repeating: 0x11, count: 64)
    var reference = built.reference
    reference.algorithm = .sha256
    #expect(try verdicts(built, reference: reference)["hash algorithm"]?.outcome == .differs(expected: "sha-256", token: "sha-512"))
    reference.algorithm = .sha512
    #expect(try verdicts(built, reference: reference)["hash algorithm"]?.outcome == .match)
  }

  /// The published sample: both signatures (the platform's with its CPAK) and the binding verify.
  @Test func thePublishedSampleVerifies() throws {
    let token = try CCAToken(decoding: try Fixture.bytes("cca-token-draft-ffm-00.cbor"))
    let cpak = try TokenVerifier.platformKey(fromFile: try Fixture.bytes("cpak.json"))
    let result = TokenVerifier(platformKey: cpak).verify(token, against: TokenReference(algorithm: .sha256, rim: token.realmClaims.rim))
    #expect(result["platform signature"]?.outcome == .ok)
    #expect(result["realm signature"]?.outcome == .ok)
    #expect(result["binding"]?.outcome == .ok)
    #expect(result["RIM"]?.outcome == .match)
    #expect(result.allSatisfy { !$0.rejects })
    // Another key does not verify it.
    let other = TokenVerifier(platformKey: P384.Signing.PrivateKey().publicKey).verify(token, against: TokenReference())
    #expect(other["platform signature"]?.rejects == true)
  }
}

@Suite struct TokenVerifierInputTests {
  @Test func readsTheCPAKInEveryFormat() throws {
    let key = P384.Signing.PrivateKey().publicKey
    let point = Array(key.x963Representation)
    let jwk = """
      {"kty": "EC", "crv": "P-384", "x": "\(Self.base64URL(point[1...48]))", "y": "\(Self.base64URL(point[49...]))"}
      """
    for file in [Array(key.pemRepresentation.utf8), Array(key.derRepresentation), point, Array(ByteString.hex(bytes: point).utf8) + [10],
                 Array(jwk.utf8), Array("[{\"pkey\": \(jwk)}]".utf8)] {
      #expect(try TokenVerifier.platformKey(fromFile: file).x963Representation == key.x963Representation)
    }
    #expect(throws: TokenVerifierInputError.self) { try TokenVerifier.platformKey(fromFile: Array("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".utf8)) }
    #expect(throws: TokenVerifierInputError.self) { try TokenVerifier.platformKey(fromFile: Array(point[0..<96])) }
    #expect(throws: TokenVerifierInputError.self) { try TokenVerifier.platformKey(fromFile: Array(P256.Signing.PrivateKey().publicKey.pemRepresentation.utf8)) }
  }

  @Test func readsMeasureJSON() throws {
    let rim = String(repeating: "ab", count: 32), rem0 = String(repeating: "cd", count: 32), rpv = String(repeating: "00", count: 64)
    let full = #"{"algorithm":"sha256","rules":"rmm-2.0","rim":"\#(rim)","rems":["\#(rem0)",null,null,null],"rpv":"\#(rpv)"}"#
    let reference = try TokenReference(measureJSON: Array(full.utf8))
    #expect(reference.algorithm == .sha256)
    #expect(reference.rim == [UInt8](repeating: 0xab, count: 32))
    #expect(reference.rems == [[UInt8](repeating: 0xcd, count: 32), nil, nil, nil])
    #expect(reference.personalization == [UInt8](repeating: 0, count: 64))
    // Today's measure --json: no REMs, no RPV: both wildcards.
    let today = try TokenReference(measureJSON: Array(#"{"algorithm":"sha256","rules":"rmm-2.0","rim":"\#(rim)"}"#.utf8))
    #expect(today.rems == [nil, nil, nil, nil] && today.personalization == nil)
    for bad in [#"{"algorithm":"sha384","rim":"\#(rim)"}"#, #"{"algorithm":"sha512","rim":"\#(rim)"}"#,
                #"{"algorithm":"sha256","rim":"xyz"}"#, #"{"algorithm":"sha256","rim":"\#(rim)","rems":[]}"#, "[1]", "not json"] {
      #expect(throws: TokenVerifierInputError.self) { try TokenReference(measureJSON: Array(bad.utf8)) }
    }
  }

  @Test func parsesHex() {
    #expect(TokenReference.bytes(hex: "00fFaB") == [0, 255, 171])
    #expect(TokenReference.bytes(hex: "") == [])
    #expect(TokenReference.bytes(hex: "abc") == nil)
    #expect(TokenReference.bytes(hex: "zz") == nil)
  }

  static func base64URL(_ bytes: ArraySlice<UInt8>) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }
}
