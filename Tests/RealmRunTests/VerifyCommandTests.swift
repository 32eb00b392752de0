import Attestation
import Foundation
import Testing
@testable import realm_run

/// `realm-run verify` on the published sample token (Tests/Fixtures/cca-token, see its README):
/// the exit statuses and what the options and the reference file feed the verifier.
@Suite struct VerifyCommandTests {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../Fixtures/cca-token").standardized.path
  static let token = fixtures + "/cca-token-draft-ffm-00.cbor"
  static let cpak = fixtures + "/cpak.json"
  /// The sample's RIM and REM0 (as draft-ffm-rats-cca-token's example has them).
  static let rim = "311314ab73620350cf758834ae5c65d9e8c2dc7febe6e7d9654bbe864e300d49"
  static let rem0 = "24d5b0a296cc05cbd8068c5067c5bd473b770dda6ae082fe3ba30abe3f9a6ab1"
  /// Its RPV, text.
  static let realmPV = "The quick brown fox jumps over 13 lazy dogs.The quick brown fox "

  /// The status `verify` ends with (0 when it returns).
  func status(_ arguments: [String]) throws -> Int32 {
    do {
      try VerifyCommand.parse(arguments).run()
      return 0
    } catch let status as realm_run.ExitStatus {
      return status.rawValue
    }
  }

  func temporaryFile(_ bytes: [UInt8]) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(UUID().uuidString)").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
  }

  @Test func acceptsTheSampleAgainstItsValues() throws {
    #expect(try status([Self.token, "--cpak", Self.cpak, "--rim", Self.rim, "--rem", "0=\(Self.rem0)", "--realm-pv", Self.realmPV]) == 0)
    #expect(try status([Self.token]) == 0)  // signatures and binding only
  }

  @Test func aDifferentClaimIsStatus6() throws {
    let otherRIM = String(Self.rim.reversed())
    #expect(try status([Self.token, "--rim", otherRIM]) == realm_run.ExitStatus.verificationFailed.rawValue)
    #expect(try status([Self.token, "--rem", "3=\(Self.rem0)"]) == 6)
    #expect(try status([Self.token, "--realm-pv", "another realm"]) == 6)
    #expect(try status([Self.token, "--challenge", "00112233"]) == 6)
  }

  @Test func aFlippedSignatureByteIsStatus6() throws {
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.token)))
    bytes[bytes.count - 10] ^= 0x01  // in the realm token's signature, the token's last item
    let path = try temporaryFile(bytes)
    defer { try? FileManager.default.removeItem(atPath: path) }
    #expect(try status([path, "--rim", Self.rim]) == 6)
  }

  @Test func readsMeasureJSON() throws {
    let matching = try temporaryFile(Array(#"{"algorithm":"sha256","rules":"rmm-2.0","rim":"\#(Self.rim)"}"#.utf8))
    let other = try temporaryFile(Array(#"{"algorithm":"sha512","rim":"\#(Self.rim + Self.rim)"}"#.utf8))
    defer { for path in [matching, other] { try? FileManager.default.removeItem(atPath: path) } }
    #expect(try status([Self.token, "--reference", matching]) == 0)
    #expect(try status([Self.token, "--reference", other]) == 6)
    // --rim overrides the file's.
    #expect(try status([Self.token, "--reference", matching, "--rim", String(Self.rim.reversed())]) == 6)
  }

  @Test func anUnreadableTokenReferenceOrKeyIsStatus7() throws {
    let garbage = try temporaryFile(Array("not a token".utf8))
    defer { try? FileManager.default.removeItem(atPath: garbage) }
    #expect(try status(["/nonexistent/token.cbor"]) == realm_run.ExitStatus.unreadableEvidence.rawValue)
    #expect(try status([garbage]) == 7)
    #expect(try status([Self.token, "--reference", garbage]) == 7)
    #expect(try status([Self.token, "--cpak", garbage]) == 7)
  }

  @Test func printsJSON() throws {
    let token = try CCAToken(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: Self.token))))
    let rem0 = try #require(TokenReference.bytes(hex: Self.rem0))
    let reference = TokenReference(algorithm: .sha256, rim: TokenReference.bytes(hex: Self.rim), rems: [nil, rem0, nil, nil])
    let text = VerifyCommand.json(token, TokenVerifier().verify(token, against: reference))
    let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    #expect(object["form"] as? Int == 399)
    #expect(object["realm_profile"] as? String == "tag:arm.com,2023:realm#1.0.0")
    #expect(object["accepted"] as? Bool == false)
    let checks = try #require(object["checks"] as? [[String: Any]])
    #expect(checks.compactMap { $0["claim"] as? String }
      == ["platform signature", "realm signature", "binding", "hash algorithm", "challenge", "RIM", "REM0", "REM1", "REM2", "REM3", "RPV"])
    #expect(checks[5]["result"] as? String == "match")
    #expect(checks[0]["result"] as? String == "not checked")
    #expect(checks[7]["result"] as? String == "differs" && checks[7]["expected"] as? String == Self.rem0)
    #expect(checks[7]["token"] as? String != nil)
  }

  @Test func badValuesAreUsageErrors() {
    for arguments in [["t", "--rim", "abc"], ["t", "--rem", "4=\(Self.rem0)"], ["t", "--rem", "0=zz"],
                      ["t", "--realm-pv", "x", "--rpv", "00"], ["t", "--challenge", String(repeating: "00", count: 65)]] {
      #expect(throws: (any Error).self) { try VerifyCommand.parse(arguments) }
    }
  }
}
