import Crypto
import FirmwareCore
import Foundation

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
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)), let fields = object as? [String: Any] else {
      throw .reference("not a JSON object (the output of 'realm-run measure --json')")
    }
    guard let name = fields["algorithm"] as? String, let algorithm = RealmHashAlgorithm(rawValue: name) else {
      throw .reference("\"algorithm\" is not sha256 or sha512")
    }
    func digest(_ value: Any?, _ field: String) throws(TokenVerifierInputError) -> [UInt8] {
      guard let text = value as? String, let bytes = Self.bytes(hex: text), bytes.count == algorithm.digestSize else {
        throw .reference("\(field) is not \(algorithm.digestSize * 2) hex digits")
      }
      return bytes
    }
    self.init(algorithm: algorithm, rim: try digest(fields["rim"], "\"rim\""))
    if let rems = fields["rems"], !(rems is NSNull) {
      guard let entries = rems as? [Any], entries.count == 4 else { throw .reference("\"rems\" is not an array of 4") }
      for (index, entry) in entries.enumerated() where !(entry is NSNull) {
        self.rems[index] = try digest(entry, "\"rems\"[\(index)]")
      }
    }
    if let rpv = fields["rpv"], !(rpv is NSNull) {
      guard let text = rpv as? String, let bytes = Self.bytes(hex: text), bytes.count == 64 else {
        throw .reference("\"rpv\" is not 128 hex digits")
      }
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
      let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
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
    guard var object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
      throw .platformKey("not valid JSON")
    }
    if let list = object as? [Any], let first = list.first { object = first }
    if let anchor = object as? [String: Any], let key = anchor["pkey"] { object = key }
    guard let fields = object as? [String: Any], fields["kty"] as? String == "EC", fields["crv"] as? String == "P-384",
          let x = (fields["x"] as? String).flatMap(base64URL), let y = (fields["y"] as? String).flatMap(base64URL),
          x.count == 48, y.count == 48 else {
      throw .platformKey("a JSON key that is not an EC P-384 JWK with 48-byte x and y")
    }
    return try point([4] + x + y)
  }

  private static func base64URL(_ text: String) -> [UInt8]? {
    var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while standard.count % 4 != 0 { standard += "=" }
    return Data(base64Encoded: standard).map { Array($0) }
  }
}
