import Attestation
import Crypto
import FirmwareCore
import Foundation

/// Builds CCA tokens as TF-RMM does, signed with fresh P-384 keys, so that each test can change one
/// thing (a claim, a key, a signature byte) and check the verdict on it.
struct TestToken {
  var form: CCAToken.Form = .cmwCollection
  var realmKey = P384.Signing.PrivateKey()
  var platformKey = P384.Signing.PrivateKey()
  /// Signs the realm token instead of `realmKey` (whose public half stays the RAK).
  var realmSigner: P384.Signing.PrivateKey?
  var profile: String? = "tag:arm.com,2023:realm#1.0.0"
  var challenge = TokenReference.padded(Array("the verifier's nonce, 32 bytes..".utf8))!
  var personalization = TokenReference.padded(Array("realm-run test".utf8))!
  var algorithm = "sha-256"
  var rim = [UInt8](repeating: 0x11, count: 32)
  var rems: [[UInt8]] = (0..<4).map { [UInt8](repeating: UInt8(0x20 + $0), count: 32) }
  /// Claims after the mandatory ones (RMM 2.0's instance ID and MEC policy, or anything).
  var extraRealmClaims: [(key: CBORValue, value: CBORValue)] = []
  /// Replaces the platform token's challenge (normally the SHA-256 of the RAK).
  var binder: [UInt8]?
  /// Flips a bit of the realm token's (or the platform token's) signature after signing.
  var flipRealmSignature = false
  var flipPlatformSignature = false

  /// The RAK claim's bytes: a COSE_Key with a profile, the raw point without.
  var rakBytes: [UInt8] {
    let point = Array(realmKey.publicKey.x963Representation)
    guard profile != nil else { return point }
    return CBORValue.map([
      (.int(1), .int(2)), (.int(-1), .int(2)), (.int(-2), .bytes(Array(point[1...48]))), (.int(-3), .bytes(Array(point[49...]))),
    ]).encoded()
  }

  var realmClaims: [(key: CBORValue, value: CBORValue)] {
    var claims: [(key: CBORValue, value: CBORValue)] = [
      (.int(10), .bytes(challenge)), (.int(44235), .bytes(personalization)), (.int(44237), .bytes(rakBytes)),
      (.int(44236), .text(algorithm)), (.int(44240), .text("sha-256")), (.int(44238), .bytes(rim)),
      (.int(44239), .array(rems.map { .bytes($0) })),
    ]
    if let profile { claims.insert((.int(265), .text(profile)), at: 0) }
    return claims + extraRealmClaims
  }

  var platformClaims: [(key: CBORValue, value: CBORValue)] {
    [
      (.int(265), .text("tag:arm.com,2023:cca_platform#1.0.0")),
      (.int(10), .bytes(binder ?? Array(SHA256.hash(data: rakBytes)))),
      (.int(2395), .int(0x3000)),
      (.int(2402), .text("sha-256")),
      (.int(2399), .array([])),
    ]
  }

  /// A COSE_Sign1 of `claims`, tag 18, ES384.
  static func sign(_ claims: CBORValue, with key: P384.Signing.PrivateKey, flip: Bool) -> [UInt8] {
    let protected = CBORValue.map([(.int(1), .int(-35))]).encoded()
    let payload = claims.encoded()
    let toBeSigned = CBORValue.array([.text("Signature1"), .bytes(protected), .bytes([]), .bytes(payload)]).encoded()
    var signature = Array(try! key.signature(for: toBeSigned).rawRepresentation)
    if flip { signature[17] ^= 0x01 }
    return CBORValue.tagged(18, .array([.bytes(protected), .map([]), .bytes(payload), .bytes(signature)])).encoded()
  }

  var encoded: [UInt8] {
    let platform = Self.sign(.map(platformClaims), with: platformKey, flip: flipPlatformSignature)
    let realm = Self.sign(.map(realmClaims), with: realmSigner ?? realmKey, flip: flipRealmSignature)
    switch form {
    case .cmwCollection:
      return CBORValue.tagged(907, .map([
        (.int(44234), .array([.int(263), .bytes(platform)])), (.int(44241), .array([.int(263), .bytes(realm)])),
      ])).encoded()
    case .eatCollection:
      return CBORValue.tagged(399, .map([(.int(44234), .bytes(platform)), (.int(44241), .bytes(realm))])).encoded()
    }
  }

  /// Reference values this token matches in every claim.
  var reference: TokenReference {
    TokenReference(algorithm: .sha256, rim: rim, rems: rems, personalization: personalization, challenge: challenge)
  }

  var verifier: TokenVerifier { TokenVerifier(platformKey: platformKey.publicKey, platformKeySource: "the test CPAK") }
}

enum Fixture {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../Fixtures/cca-token").standardized

  static func bytes(_ name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: directory.appendingPathComponent(name)))
  }
}

extension Array where Element == ClaimVerdict {
  /// The verdict on `claim`.
  subscript(claim: String) -> ClaimVerdict? { first { $0.claim == claim } }
}
