/// The guest's intermediate physical address space: for a Realm, the lower half is protected and the
/// upper half (top IPA bit set) is the unprotected alias through which the guest reaches shared
/// memory and every emulated device.
public struct IPALayout: Sendable, Equatable {
  /// Width of the IPA space in bits, both halves included for a Realm.
  public let bits: Int
  /// Whether the upper half is the unprotected alias (Realms) or just more address space.
  public let isRealm: Bool

  public init(bits: Int, isRealm: Bool) {
    self.bits = bits
    self.isRealm = isRealm
  }

  /// The smallest IPA width that reaches `top` (one past the highest address used): at least 32
  /// bits, plus one bit for a Realm's unprotected alias.
  public static func minimumBits(reaching top: UInt64, realm: Bool) -> Int {
    let used = top <= 1 ? 1 : 64 - (top - 1).leadingZeroBitCount
    return max(32, used) + (realm ? 1 : 0)
  }

  /// The bit that selects the unprotected alias (zero outside a Realm).
  public var sharedBit: UInt64 { isRealm ? 1 << UInt64(bits - 1) : 0 }

  /// `address` with the unprotected-alias bit removed: where the device or RAM actually is.
  public func canonical(_ address: UInt64) -> UInt64 { address & ~sharedBit }

  /// Whether `address` is in the unprotected (shared) half.
  public func isShared(_ address: UInt64) -> Bool { isRealm && address & sharedBit != 0 }
}
