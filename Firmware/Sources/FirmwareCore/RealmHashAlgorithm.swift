/// The hash algorithm of a Realm's measurements: the RIM and the REMs (`RmiHashAlgorithm`,
/// DEN0137 B4.4.13; `RsiRealmConfig.hash_algo` in the Realm). The one enum for it: the KVM calls
/// that configure a Realm, the RIM model and realm-run's `--measurement-algo` all use this.
public enum RealmHashAlgorithm: String, Sendable, CaseIterable {
  case sha256
  case sha512

  /// The value of `RmiRealmParams.hash_algo`, of the generation A UAPI's `hash_algo` and of
  /// `RsiRealmConfig.hash_algo`: 0 SHA-256, 1 SHA-512.
  public var rmiValue: UInt8 { self == .sha256 ? 0 : 1 }

  /// The algorithm `value` encodes (``rmiValue``), or `nil` for a value the RMM does not define.
  public init?(rmiValue value: UInt64) {
    switch value {
    case 0: self = .sha256
    case 1: self = .sha512
    default: return nil
    }
  }

  /// Bytes in a digest: 32 or 64. A measurement field is always 64 bytes; a SHA-256 value fills
  /// its first 32 and the rest is zero (DEN0137 A7.1.1).
  public var digestSize: Int { self == .sha256 ? 32 : 64 }
}
