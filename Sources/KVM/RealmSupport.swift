import CKVM

/// The KVM CCA host UAPI generation a kernel speaks, found by probing capability numbers (they
/// moved in almost every revision of the series; see kvm-cca-api.md §1.2).
public enum CCAGeneration: Equatable, Sendable, CustomStringConvertible {
  /// `KVM_CAP_ARM_RME` with ENABLE_CAP sub-commands (series v5-v11, RMM 1.0).
  case rme(capability: UInt32)
  /// `KVM_CAP_ARM_RMI` with the populate ioctl and implicit activation (series v12+).
  case rmi(capability: UInt32)

  public var description: String {
    switch self {
    case .rme(let capability): return "KVM_CAP_ARM_RME (\(capability)), series v5-v11"
    case .rmi(let capability): return "KVM_CAP_ARM_RMI (\(capability)), series v12+"
    }
  }

  /// `KVM_CAP_ARM_RMI` numbers: v12 247, v13 248, v14 249, v15 251, later trees 253.
  public static let rmiCapabilities: [UInt32] = [247, 248, 249, 251, 253]
  /// `KVM_CAP_ARM_RME` numbers: v5-v7 300, v8 240, v9 243, v10 244.
  public static let rmeCapabilities: [UInt32] = [300, 240, 243, 244]

  /// Probes `system` for CCA support. Only meaningful on an arm64 host: on others these numbers
  /// belong to unrelated capabilities (248 is s390-only even on the CCA host's own base), so the
  /// probe answers `nil` there.
  public static func probe(_ system: KVMSystem) -> CCAGeneration? {
    #if arch(arm64)
    for capability in rmiCapabilities where system.checkExtension(UInt(capability)) > 0 {
      return .rmi(capability: capability)
    }
    for capability in rmeCapabilities where system.checkExtension(UInt(capability)) > 0 {
      return .rme(capability: capability)
    }
    #endif
    return nil
  }
}
