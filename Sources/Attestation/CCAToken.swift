/// A CCA attestation token: a platform token and a realm token, each a COSE_Sign1, in one of the two
/// collections TF-RMM emits (tag 907 from TF-RMM 0.9.0, tag 399 from 0.8.0).
///
/// Decoding checks structure only; ``TokenVerifier`` checks signatures, the binding and claims.
/// The signed bytes (protected headers, payloads) and the RAK are kept exactly as received.
public struct CCAToken: Equatable, Sendable {
  /// The top-level form.
  public enum Form: Equatable, Sendable, CustomStringConvertible {
    /// Tag 907: a CMW collection, each entry `[263, bstr]` (TF-RMM 0.9.0 and later).
    case cmwCollection
    /// Tag 399: an EAT collection, each entry a bstr (TF-RMM 0.8.0, RMM 1.0).
    case eatCollection

    public var description: String {
      self == .cmwCollection ? "tag 907 (CMW collection)" : "tag 399 (EAT collection)"
    }
  }

  /// The largest token realm-run reads: TF-RMM's tokens are about 2 KiB, its buffer 4 KiB.
  public static let maximumSize = 64 * 1024

  public var form: Form
  /// The platform token, signed with the CCA Platform Attestation Key (CPAK).
  public var platform: COSESign1
  /// The realm token, signed with the Realm Attestation Key it carries (claim 44237).
  public var realm: COSESign1
  public var platformClaims: CCAPlatformClaims
  public var realmClaims: CCARealmClaims

  static let platformKey: Int64 = 44234
  static let realmKey: Int64 = 44241
  /// CoAP content format `application/eat+cwt`, the type of both CMW entries.
  static let eatCWTContentFormat: UInt64 = 263

  /// Decodes `bytes`, which may be anything: every failure is a ``CCATokenError``.
  public init(decoding bytes: [UInt8]) throws(CCATokenError) {
    guard bytes.count <= Self.maximumSize else { throw .tooLarge(bytes.count) }
    let top = try CBORValue.decode(bytes)
    let context = "token"
    guard case .tagged(let tag, let content) = top else {
      throw .wrongTag(context: context, found: nil, expected: "907 or 399 (a CCA token collection)")
    }
    switch tag {
    case 907: form = .cmwCollection
    case 399: form = .eatCollection
    default: throw .wrongTag(context: context, found: tag, expected: "907 or 399 (a CCA token collection)")
    }
    let collection = try ClaimMap(content, context: context)
    func entry(_ key: Int64, _ name: String, form: Form) throws(CCATokenError) -> [UInt8] {
      guard let item = collection[key] else { throw .missing(context: context, key: key, name: name) }
      switch form {
      case .eatCollection:
        return try item.bytes(context: name)
      case .cmwCollection:
        guard case .array(let pair) = item, pair.count == 2 else {
          throw .invalid(context: name, problem: "not a CMW record [content-format, bytes]")
        }
        guard case .unsigned(Self.eatCWTContentFormat) = pair[0] else {
          throw .invalid(context: name, problem: "content format is not 263 (application/eat+cwt)")
        }
        return try pair[1].bytes(context: name)
      }
    }
    platform = try COSESign1(decoding: try entry(Self.platformKey, "platform token", form: form), context: "platform token")
    realm = try COSESign1(decoding: try entry(Self.realmKey, "realm token", form: form), context: "realm token")
    platformClaims = try CCAPlatformClaims(decoding: platform.payload)
    realmClaims = try CCARealmClaims(decoding: realm.payload)
  }
}

/// A COSE_Sign1 (RFC 9052) signed with ES384, the only algorithm CCA tokens use.
public struct COSESign1: Equatable, Sendable {
  /// The protected header's bytes as received (the signature covers them).
  public var protectedHeader: [UInt8]
  /// The payload (a claims map) as received.
  public var payload: [UInt8]
  /// The ECDSA P-384 signature: r || s, 48 bytes each (not DER).
  public var signature: [UInt8]

  /// COSE algorithm ES384.
  static let es384: Int64 = -35

  init(decoding bytes: [UInt8], context: String) throws(CCATokenError) {
    var item = try CBORValue.decode(bytes)
    if case .tagged(let tag, let content) = item {
      guard tag == 18 else { throw .wrongTag(context: context, found: tag, expected: "18 (COSE_Sign1)") }
      item = content
    }
    guard case .array(let parts) = item, parts.count == 4 else {
      throw .invalid(context: context, problem: "not a COSE_Sign1 [protected, unprotected, payload, signature]")
    }
    protectedHeader = try parts[0].bytes(context: "\(context) protected header")
    _ = try ClaimMap(parts[1], context: "\(context) unprotected header")  // a map without repeated keys
    payload = try parts[2].bytes(context: "\(context) payload")
    signature = try parts[3].bytes(context: "\(context) signature", sizes: [96])

    let header = try ClaimMap(try CBORValue.decode(protectedHeader), context: "\(context) protected header")
    guard let algorithm = header[1] else { throw .missing(context: "\(context) protected header", key: 1, name: "algorithm") }
    guard algorithm.integer == Self.es384 else {
      throw .invalid(context: "\(context) protected header", problem: "algorithm is not ES384 (-35)")
    }
  }

  /// The bytes the signature covers: `["Signature1", protected, h'', payload]`, deterministically encoded.
  public var signedBytes: [UInt8] {
    CBORValue.array([.text("Signature1"), .bytes(protectedHeader), .bytes([]), .bytes(payload)]).encoded()
  }
}

/// The Realm Attestation Key (claim 44237).
public struct RealmAttestationKey: Equatable, Sendable {
  /// The claim's bytes as received: a COSE_Key, or in the legacy layout the raw point. The
  /// platform token's challenge is the hash of exactly these bytes.
  public var encoded: [UInt8]
  /// The public key as an uncompressed point, `04 || X || Y` (97 bytes).
  public var point: [UInt8]

  /// Reads `encoded` as a COSE_Key (EC2, P-384) when `coseKey`, else as a raw point.
  init(_ encoded: [UInt8], coseKey: Bool) throws(CCATokenError) {
    let context = "realm token RAK (claim 44237)"
    self.encoded = encoded
    guard coseKey else {
      guard encoded.count == 97, encoded[0] == 4 else {
        throw .invalid(context: context, problem: "\(encoded.count) bytes, not an uncompressed P-384 point (97 bytes, 04 || X || Y)")
      }
      point = encoded
      return
    }
    let key = try ClaimMap(try CBORValue.decode(encoded), context: context)
    func integer(_ label: Int64, _ name: String, is expected: Int64) throws(CCATokenError) {
      guard let value = key[label] else { throw .missing(context: context, key: label, name: name) }
      guard value.integer == expected else { throw .invalid(context: context, problem: "\(name) is not \(expected)") }
    }
    try integer(1, "key type", is: 2)  // EC2
    try integer(-1, "curve", is: 2)  // P-384
    if key[3] != nil { try integer(3, "algorithm", is: COSESign1.es384) }
    guard let x = key[-2] else { throw .missing(context: context, key: -2, name: "x coordinate") }
    guard let y = key[-3] else { throw .missing(context: context, key: -3, name: "y coordinate") }
    point = [4] + (try x.bytes(context: "\(context) x", sizes: [48])) + (try y.bytes(context: "\(context) y", sizes: [48]))
  }
}

/// The realm token's claims (TF-RMM `attestation_defs_priv.h`).
public struct CCARealmClaims: Equatable, Sendable {
  /// Claim 10: the challenge the Realm gave, 64 bytes (zero-padded by the guest's driver).
  public var challenge: [UInt8]
  /// Claim 44235: the Realm Personalization Value, 64 bytes.
  public var personalization: [UInt8]
  /// Claim 44237.
  public var attestationKey: RealmAttestationKey
  /// Claim 44236: the realm hash algorithm, e.g. "sha-256".
  public var hashAlgorithm: String
  /// Claim 44240: the algorithm of the binding hash of the RAK, e.g. "sha-256".
  public var keyHashAlgorithm: String
  /// Claim 44238: the Realm Initial Measurement.
  public var rim: [UInt8]
  /// Claim 44239: REM0–REM3.
  public var rems: [[UInt8]]
  /// Claim 265: the profile ("tag:arm.com,2023:realm#1.0.0", ...); absent in the legacy layout.
  public var profile: String?
  /// Claim 256 (RMM 2.0): the Realm instance ID, random per Realm.
  public var instanceID: [UInt8]?
  /// Claim 44243: the MEC policy (an integer since RMM 2.0, text before), as text.
  public var mecPolicy: String?

  static let digestSizes = [32, 48, 64]

  init(decoding payload: [UInt8]) throws(CCATokenError) {
    let context = "realm token"
    let claims = try ClaimMap(try CBORValue.decode(payload), context: "\(context) claims")
    func claim(_ key: Int64, _ name: String) throws(CCATokenError) -> CBORValue {
      guard let value = claims[key] else { throw .missing(context: context, key: key, name: name) }
      return value
    }
    profile = try claims[265]?.text(context: "\(context) profile (265)")
    challenge = try claim(10, "challenge").bytes(context: "\(context) challenge (10)", sizes: [64])
    personalization = try claim(44235, "personalization value").bytes(context: "\(context) RPV (44235)", sizes: [64])
    attestationKey = try RealmAttestationKey(
      try claim(44237, "attestation key").bytes(context: "\(context) RAK (44237)"), coseKey: profile != nil)
    hashAlgorithm = try claim(44236, "hash algorithm").text(context: "\(context) hash algorithm (44236)")
    keyHashAlgorithm = try claim(44240, "RAK hash algorithm").text(context: "\(context) RAK hash algorithm (44240)")
    rim = try claim(44238, "RIM").bytes(context: "\(context) RIM (44238)", sizes: Self.digestSizes)
    guard case .array(let remItems) = try claim(44239, "REMs") else {
      throw .invalid(context: "\(context) REMs (44239)", problem: "not an array")
    }
    guard remItems.count == 4 else { throw .invalid(context: "\(context) REMs (44239)", problem: "\(remItems.count) entries, not 4") }
    var rems: [[UInt8]] = []
    for (index, item) in remItems.enumerated() {
      rems.append(try item.bytes(context: "\(context) REM\(index)", sizes: Self.digestSizes))
    }
    self.rems = rems
    instanceID = try claims[256]?.bytes(context: "\(context) instance ID (256)", sizes: [33])
    switch claims[44243] {
    case nil: mecPolicy = nil
    case .unsigned(let n): mecPolicy = n == 0 ? "shared" : n == 1 ? "private" : "\(n)"
    case let text?: mecPolicy = try text.text(context: "\(context) MEC policy (44243)")  // before RMM 2.0
    }
  }
}

/// The platform token's claims realm-run reads (the rest are Veraison's business).
public struct CCAPlatformClaims: Equatable, Sendable {
  /// Claim 10: the binder, the hash of the realm token's RAK.
  public var challenge: [UInt8]
  /// Claim 265: "tag:arm.com,2023:cca_platform#1.0.0" or the legacy "http://arm.com/CCA-SSD/1.0.0".
  public var profile: String?
  /// Claim 2395: the security lifecycle; 0x3000–0x30ff means secured.
  public var lifecycle: UInt64?
  /// Claim 2402: the platform's hash algorithm.
  public var hashAlgorithm: String?
  /// Claim 2399: how many software components the platform measured.
  public var softwareComponents: Int?

  init(decoding payload: [UInt8]) throws(CCATokenError) {
    let context = "platform token"
    let claims = try ClaimMap(try CBORValue.decode(payload), context: "\(context) claims")
    guard let binder = claims[10] else { throw .missing(context: context, key: 10, name: "challenge") }
    challenge = try binder.bytes(context: "\(context) challenge (10)", sizes: CCARealmClaims.digestSizes)
    profile = try claims[265]?.text(context: "\(context) profile (265)")
    hashAlgorithm = try claims[2402]?.text(context: "\(context) hash algorithm (2402)")
    switch claims[2395] {
    case nil: lifecycle = nil
    case .unsigned(let n): lifecycle = n
    default: throw .invalid(context: "\(context) lifecycle (2395)", problem: "not an unsigned integer")
    }
    switch claims[2399] {
    case nil: softwareComponents = nil
    case .array(let components): softwareComponents = components.count
    default: throw .invalid(context: "\(context) software components (2399)", problem: "not an array")
    }
  }
}

/// A CBOR map of claims or header parameters, by integer key; text keys are allowed and ignored,
/// every other key type and every repeated key is an error.
struct ClaimMap {
  private var values: [Int64: CBORValue] = [:]

  init(_ item: CBORValue, context: String) throws(CCATokenError) {
    guard case .map(let pairs) = item else { throw .invalid(context: context, problem: "not a map") }
    var texts = Set<String>()
    for pair in pairs {
      switch pair.key {
      case .text(let text):
        guard texts.insert(text).inserted else { throw .duplicateKey(context: context, key: "\"\(text)\"") }
      default:
        guard let key = pair.key.integer else { throw .invalid(context: context, problem: "a key that is neither an integer nor text") }
        guard values.updateValue(pair.value, forKey: key) == nil else { throw .duplicateKey(context: context, key: "\(key)") }
      }
    }
  }

  subscript(key: Int64) -> CBORValue? { values[key] }
}

extension CBORValue {
  /// The byte string's contents, of one of `sizes` bytes when given.
  func bytes(context: String, sizes: [Int]? = nil) throws(CCATokenError) -> [UInt8] {
    guard case .bytes(let bytes) = self else { throw .invalid(context: context, problem: "not a byte string") }
    if let sizes, !sizes.contains(bytes.count) {
      let expected = sizes.map(String.init).joined(separator: " or ")
      throw .invalid(context: context, problem: "\(bytes.count) bytes, not \(expected)")
    }
    return bytes
  }

  /// The text, at most 256 bytes and printable (claims realm-run prints).
  func text(context: String) throws(CCATokenError) -> String {
    guard case .text(let text) = self else { throw .invalid(context: context, problem: "not a text string") }
    guard text.utf8.count <= 256 else { throw .invalid(context: context, problem: "\(text.utf8.count) bytes of text") }
    guard text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f }) else {
      throw .invalid(context: context, problem: "text with control characters")
    }
    return text
  }
}
