import Crypto
import FirmwareCore

/// What a token's realm claims must be; every `nil` is a claim not checked (a wildcard).
public struct TokenReference: Equatable, Sendable {
  /// The realm hash algorithm (claim 44236).
  public var algorithm: RealmHashAlgorithm?
  /// The RIM (claim 44238).
  public var rim: [UInt8]?
  /// REM0–REM3 (claim 44239), four entries, `nil` for any value.
  public var rems: [[UInt8]?]
  /// The RPV (claim 44235), 64 bytes.
  public var personalization: [UInt8]?
  /// The challenge (claim 10), 64 bytes.
  public var challenge: [UInt8]?

  public init(algorithm: RealmHashAlgorithm? = nil, rim: [UInt8]? = nil, rems: [[UInt8]?] = [nil, nil, nil, nil],
              personalization: [UInt8]? = nil, challenge: [UInt8]? = nil) {
    self.algorithm = algorithm
    self.rim = rim
    self.rems = rems
    self.personalization = personalization
    self.challenge = challenge
  }

  /// Everything `values` predicts (`realm-run measure`): algorithm, RIM, the known REMs and the RPV.
  public init(_ values: RealmReferenceValues) {
    self.init(algorithm: values.algorithm, rim: values.rim, rems: values.rems, personalization: values.personalization)
  }

  /// `bytes` zero-padded to the 64 bytes of a challenge or an RPV, as the guest's driver and the RMM
  /// pad them (nil when longer).
  public static func padded(_ bytes: [UInt8]) -> [UInt8]? {
    bytes.count <= 64 ? bytes + [UInt8](repeating: 0, count: 64 - bytes.count) : nil
  }
}

/// The verdict on one check of a token: one line of `realm-run verify`.
public struct ClaimVerdict: Equatable, Sendable, CustomStringConvertible {
  public enum Outcome: Equatable, Sendable {
    /// A signature or the binding verified.
    case ok
    /// The claim equals the reference value.
    case match
    /// The claim has another value.
    case differs(expected: String, token: String)
    /// A signature or the binding did not verify, for the reason given.
    case fails(String)
    /// Nothing to compare with (a wildcard), or no key to check with.
    case notChecked(String)
  }

  /// The claim's name: "realm signature", "RIM", "REM2", ...
  public var claim: String
  public var outcome: Outcome
  /// What else the line says: the value that matched, the key used, ...
  public var note: String?

  public init(_ claim: String, _ outcome: Outcome, note: String? = nil) {
    self.claim = claim
    self.outcome = outcome
    self.note = note
  }

  /// Whether this check rejects the token.
  public var rejects: Bool {
    switch outcome {
    case .differs, .fails: return true
    case .ok, .match, .notChecked: return false
    }
  }

  public var description: String {
    let text: String
    switch outcome {
    case .ok: text = "ok" + (note.map { " (\($0))" } ?? "")
    case .match: text = "match" + (note.map { " (\($0))" } ?? "")
    case .differs(let expected, let token): text = "differs (expected \(expected), token \(token))"
    case .fails(let reason): text = "fails (\(reason))"
    case .notChecked(let reason): text = "not checked (\(reason))"
    }
    return "\(claim): \(text)"
  }
}

/// Checks a CCA token: the realm signature with the RAK it carries, the binding of that key to the
/// platform token, the platform signature when a CPAK is given, then the realm claims against
/// reference values.
public struct TokenVerifier {
  /// The CCA Platform Attestation Key's public half; nil: the platform signature is not checked.
  public var platformKey: P384.Signing.PublicKey?
  /// Where the CPAK came from, for the verdict line.
  public var platformKeySource: String

  public init(platformKey: P384.Signing.PublicKey? = nil, platformKeySource: String = "the CPAK given") {
    self.platformKey = platformKey
    self.platformKeySource = platformKeySource
  }

  /// One verdict per check, in order: signatures, binding, then the claims.
  public func verify(_ token: CCAToken, against reference: TokenReference) -> [ClaimVerdict] {
    let realm = token.realmClaims
    var verdicts: [ClaimVerdict] = []
    if let platformKey {
      verdicts.append(Self.signature("platform signature", token.platform, key: platformKey, keyName: platformKeySource))
    } else {
      verdicts.append(ClaimVerdict("platform signature", .notChecked("no CPAK given")))
    }
    if let rak = try? P384.Signing.PublicKey(x963Representation: realm.attestationKey.point) {
      verdicts.append(Self.signature("realm signature", token.realm, key: rak, keyName: nil))
    } else {
      verdicts.append(ClaimVerdict("realm signature", .fails("the RAK is not a point on P-384")))
    }
    verdicts.append(Self.binding(token))

    let tokenAlgorithm = realm.hashAlgorithm
    if let algorithm = reference.algorithm {
      let expected = Self.claimName(of: algorithm)
      verdicts.append(expected == tokenAlgorithm
        ? ClaimVerdict("hash algorithm", .match, note: tokenAlgorithm)
        : ClaimVerdict("hash algorithm", .differs(expected: expected, token: tokenAlgorithm)))
    } else {
      verdicts.append(ClaimVerdict("hash algorithm", .notChecked("no reference; the token says \(tokenAlgorithm)")))
    }
    verdicts.append(Self.compare("challenge", expected: reference.challenge, token: realm.challenge))
    verdicts.append(Self.compare("RIM", expected: reference.rim, token: realm.rim))
    for index in 0..<4 {
      let expected = index < reference.rems.count ? reference.rems[index] : nil
      verdicts.append(Self.compare("REM\(index)", expected: expected, token: realm.rems[index]))
    }
    verdicts.append(Self.compare("RPV", expected: reference.personalization, token: realm.personalization))
    return verdicts
  }

  /// The token's name of a realm hash algorithm (claim 44236): "sha-256", "sha-512".
  public static func claimName(of algorithm: RealmHashAlgorithm) -> String {
    algorithm == .sha256 ? "sha-256" : "sha-512"
  }

  /// The hash of `bytes` with the algorithm a token names ("sha-256", "sha-384", "sha-512").
  public static func digest(_ bytes: [UInt8], algorithm: String) -> [UInt8]? {
    switch algorithm {
    case "sha-256": return Array(SHA256.hash(data: bytes))
    case "sha-384": return Array(SHA384.hash(data: bytes))
    case "sha-512": return Array(SHA512.hash(data: bytes))
    default: return nil
    }
  }

  /// The verdict on `message`'s signature with `key`: the token's RAK when `keyName` is nil.
  static func signature(_ name: String, _ message: COSESign1, key: P384.Signing.PublicKey, keyName: String?) -> ClaimVerdict {
    guard let signature = try? P384.Signing.ECDSASignature(rawRepresentation: message.signature) else {
      return ClaimVerdict(name, .fails("not an ECDSA P-384 signature"))
    }
    guard key.isValidSignature(signature, for: message.signedBytes) else {
      return ClaimVerdict(name, .fails("does not verify with \(keyName ?? "the token's RAK")"))
    }
    return ClaimVerdict(name, .ok, note: keyName.map { "with \($0)" })
  }

  /// `platform[10] == H_{realm[44240]}(realm[44237] as received)`.
  static func binding(_ token: CCAToken) -> ClaimVerdict {
    let key = token.realmClaims.attestationKey.encoded
    let algorithm = token.realmClaims.keyHashAlgorithm
    guard let hash = digest(key, algorithm: algorithm) else {
      return ClaimVerdict("binding", .fails("unknown RAK hash algorithm '\(algorithm)'"))
    }
    let binder = token.platformClaims.challenge
    guard hash == binder else {
      return ClaimVerdict("binding", .fails(
        "the platform token's challenge \(ByteString.hex(bytes: binder)) is not the \(algorithm) of the RAK, \(ByteString.hex(bytes: hash))"))
    }
    return ClaimVerdict("binding", .ok, note: "platform challenge = \(algorithm) of the RAK")
  }

  static func compare(_ claim: String, expected: [UInt8]?, token: [UInt8]) -> ClaimVerdict {
    guard let expected else { return ClaimVerdict(claim, .notChecked("no reference value")) }
    guard expected == token else {
      return ClaimVerdict(claim, .differs(expected: ByteString.hex(bytes: expected), token: ByteString.hex(bytes: token)))
    }
    return ClaimVerdict(claim, .match)
  }
}
