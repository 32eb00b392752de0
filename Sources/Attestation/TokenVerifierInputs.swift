import Crypto
import FirmwareCore
import FoundationEssentials

/// Why a reference-value file, a value given on the command line or a CPAK cannot be used.
public enum TokenVerifierInputError: Error, Equatable, Sendable, CustomStringConvertible {
  /// The reference file is not the JSON `realm-run measure --json` prints, or a field is wrong.
  case reference(String)
  /// The CPAK file is no P-384 public key in a format realm-run reads.
  case platformKey(String)

  public var description: String {
    switch self {
    case .reference(let problem): return "reference values: \(problem)"
    case .platformKey(let problem): return "CPAK: \(problem)"
    }
  }
}

extension TokenReference {
  /// The largest reference or key file read.
  public static let maximumFileSize = 1 << 20

  /// The values in the output of `realm-run measure --json`: `"algorithm"` (sha256 or sha512),
  /// `"rim"` (hex), and when present `"rems"` (four hex strings or nulls) and `"rpv"` (128 hex
  /// digits). Other fields are ignored; absent REMs and RPV are not checked.
  public init(measureJSON bytes: [UInt8]) throws(TokenVerifierInputError) {
    guard bytes.count <= Self.maximumFileSize else { throw .reference("\(bytes.count) bytes: not the output of measure --json") }
    struct MeasureJSON: Decodable {
      var algorithm: String?, rim: String?, rems: [String?]?, rpv: String?
    }
    guard let fields = try? JSONDecoder().decode(MeasureJSON.self, from: Data(bytes)) else {
      throw .reference("not a JSON object (the output of 'realm-run measure --json')")
    }
    guard let name = fields.algorithm, let algorithm = RealmHashAlgorithm(rawValue: name) else {
      throw .reference("\"algorithm\" is not sha256 or sha512")
    }
    func digest(_ value: String?, _ field: String) throws(TokenVerifierInputError) -> [UInt8] {
      guard let text = value, let bytes = Self.bytes(hex: text), bytes.count == algorithm.digestSize else {
        throw .reference("\(field) is not \(algorithm.digestSize * 2) hex digits")
      }
      return bytes
    }
    self.init(algorithm: algorithm, rim: try digest(fields.rim, "\"rim\""))
    if let entries = fields.rems {
      guard entries.count == 4 else { throw .reference("\"rems\" is not an array of 4") }
      for (index, entry) in entries.enumerated() where entry != nil {
        self.rems[index] = try digest(entry, "\"rems\"[\(index)]")
      }
    }
    if let rpv = fields.rpv {
      guard let bytes = Self.bytes(hex: rpv), bytes.count == 64 else { throw .reference("\"rpv\" is not 128 hex digits") }
      personalization = bytes
    }
  }

  /// The bytes of a hexadecimal string (an even number of digits, either case; nil otherwise).
  public static func bytes(hex text: String) -> [UInt8]? {
    let digits = Array(text.utf8)
    guard digits.count % 2 == 0 else { return nil }
    func value(_ c: UInt8) -> UInt8? {
      switch c {
      case 48...57: return c - 48
      case 97...102: return c - 87
      case 65...70: return c - 55
      default: return nil
      }
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    var index = 0
    while index < digits.count {
      guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
      bytes.append(high << 4 | low)
      index += 2
    }
    return bytes
  }
}

extension TokenVerifier {
  /// A CPAK from a file's contents: PEM ("-----BEGIN PUBLIC KEY-----"), a JWK as Veraison's
  /// testdata has it (`{"kty": "EC", "crv": "P-384", "x": ..., "y": ...}`), DER
  /// (SubjectPublicKeyInfo), or the raw uncompressed point (97 bytes, or its 194 hex digits).
  public static func platformKey(fromFile bytes: [UInt8]) throws(TokenVerifierInputError) -> P384.Signing.PublicKey {
    guard bytes.count <= TokenReference.maximumFileSize else { throw .platformKey("\(bytes.count) bytes: not a public key") }
    if bytes.count == 97, bytes[0] == 4 {
      return try point(bytes)
    }
    if let text = String(validating: bytes, as: UTF8.self) {
      let trimmed = String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
      if trimmed.hasPrefix("-----BEGIN") {
        guard let key = try? P384.Signing.PublicKey(pemRepresentation: trimmed) else {
          throw .platformKey("a PEM block that is not a P-384 public key")
        }
        return key
      }
      if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") { return try jwk(trimmed) }
      if let raw = TokenReference.bytes(hex: trimmed), !raw.isEmpty { return try point(raw) }
    }
    guard let key = try? P384.Signing.PublicKey(derRepresentation: bytes) else {
      throw .platformKey("not a P-384 public key (PEM, JWK, DER or the raw 97-byte point)")
    }
    return key
  }

  private static func point(_ raw: [UInt8]) throws(TokenVerifierInputError) -> P384.Signing.PublicKey {
    guard raw.count == 97, raw[0] == 4, let key = try? P384.Signing.PublicKey(x963Representation: raw) else {
      throw .platformKey("\(raw.count) bytes that are not an uncompressed P-384 point (04 || X || Y)")
    }
    return key
  }

  /// A JWK, or the first `"pkey"` of a Veraison trust-anchor list.
  private static func jwk(_ text: String) throws(TokenVerifierInputError) -> P384.Signing.PublicKey {
    struct JWK: Decodable { var kty: String?, crv: String?, x: String?, y: String? }
    struct Anchor: Decodable { var pkey: JWK }
    let data = Data(text.utf8), decoder = JSONDecoder()
    guard let key = (try? decoder.decode([Anchor].self, from: data))?.first?.pkey ?? (try? decoder.decode(Anchor.self, from: data))?.pkey
      ?? (try? decoder.decode([JWK].self, from: data))?.first ?? (try? decoder.decode(JWK.self, from: data))
    else { throw .platformKey("not valid JSON") }
    guard key.kty == "EC", key.crv == "P-384", let x = key.x.flatMap(base64URL), let y = key.y.flatMap(base64URL),
          x.count == 48, y.count == 48 else {
      throw .platformKey("a JSON key that is not an EC P-384 JWK with 48-byte x and y")
    }
    return try point([4] + x + y)
  }

  private static func base64URL(_ text: String) -> [UInt8]? {
    var standard = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
    while standard.count % 4 != 0 { standard += "=" }
    return Data(base64Encoded: standard).map { Array($0) }
  }
}
