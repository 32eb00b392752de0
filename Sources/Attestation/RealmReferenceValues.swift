import FirmwareCore

/// What a verifier compares a Realm's attestation token with: the realm claims realm-run can
/// predict before a launch (`realm-run measure`) and check afterwards (`realm-run verify`).
///
/// Digests are kept at their algorithm's length (32 bytes for SHA-256, 64 for SHA-512), as the
/// token's claims carry them; the RPV is always 64 bytes (zero-padded, as the RMM stores it).
public struct RealmReferenceValues: Equatable, Sendable {
  /// The realm hash algorithm (token claim 44236), of the RIM and the REMs.
  public var algorithm: RealmHashAlgorithm
  /// The Realm Initial Measurement (claim 44238).
  public var rim: [UInt8]
  /// REM0–REM3 (claim 44239); `nil` where the value is not known in advance (a wildcard).
  public var rems: [[UInt8]?]
  /// The Realm Personalization Value (claim 44235): 64 bytes.
  public var personalization: [UInt8]

  public init(algorithm: RealmHashAlgorithm, rim: [UInt8], rems: [[UInt8]?] = [nil, nil, nil, nil],
              personalization: [UInt8] = [UInt8](repeating: 0, count: 64)) {
    self.algorithm = algorithm
    self.rim = rim
    self.rems = rems
    self.personalization = personalization
  }

  /// `personalization` (up to 64 bytes, e.g. `--realm-pv`) zero-padded to 64 bytes, as the RMM
  /// stores the RPV; nil when it is longer.
  public static func paddedPersonalization(_ personalization: [UInt8]) -> [UInt8]? {
    guard personalization.count <= 64 else { return nil }
    return personalization + [UInt8](repeating: 0, count: 64 - personalization.count)
  }

  /// The fields `realm-run measure --json` appends: `"rems":[4 × hex or null],"rpv":"<hex>"`.
  public var jsonFields: String {
    let rems = rems.map { $0.map { "\"" + ByteString.hex(bytes: $0) + "\"" } ?? "null" }.joined(separator: ",")
    return "\"rems\":[\(rems)],\"rpv\":\"\(ByteString.hex(bytes: personalization))\""
  }
}
