/// How the firmware boots a disk, as realm-run's `--boot-mode` asks through
/// `/chosen/realm-run,boot-mode` (one table for the CLI, the device tree and the firmware).
public enum FirmwareBootMode: Equatable, Sendable, CaseIterable {
  /// BLS entries on the ESP by the direct path (the fast one), else `\EFI\BOOT\BOOTAA64.EFI`.
  case automatic
  /// `\EFI\BOOT\BOOTAA64.EFI` in the UEFI environment, even when the ESP has BLS entries.
  case efi
  /// The ESP's BLS entries by the direct path only.
  case bls

  /// The name on the command line and in the device tree.
  public var name: [UInt8] {
    switch self {
    case .automatic: return ByteString.of("auto")
    case .efi: return ByteString.of("efi")
    case .bls: return ByteString.of("bls")
    }
  }

  public init?(name: [UInt8]) {
    guard let mode = FirmwareBootMode.allCases.first(where: { $0.name == name }) else { return nil }
    self = mode
  }

  /// The `/chosen` property that carries it.
  public static let propertyName: StaticString = "realm-run,boot-mode"
}
