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

  /// The realm VM type this generation's kernels take in `KVM_CREATE_VM` (with the IPA bits in
  /// [7:0]): 0x100 up to series v13, 1 << 30 from v14 (capability 249) on.
  public var realmVMType: UInt {
    switch self {
    case .rme: return 0x100
    case .rmi(let capability): return capability >= 249 ? 1 << 30 : 0x100
    }
  }

  /// Probes `system` for CCA support.
  ///
  /// A capability number alone proves nothing: the series' numbers are taken by unrelated
  /// capabilities in other kernels (251 answers on a stock 7.3 arm64 kernel; 248 is s390-only on
  /// the CCA host's 7.2 base). So a candidate counts only if the kernel also accepts a realm VM of
  /// that generation's type; a kernel without CCA refuses the type bits. On hosts other than
  /// arm64 the probe answers `nil` without asking.
  public static func probe(_ system: KVMSystem) -> CCAGeneration? {
    #if arch(arm64)
    return probe(system, isArm64: true)
    #else
    return probe(system, isArm64: false)
    #endif
  }

  /// ``probe(_:)`` with the host architecture given (so tests can run it anywhere).
  public static func probe(_ system: KVMSystem, isArm64: Bool) -> CCAGeneration? {
    guard isArm64 else { return nil }
    let candidates = rmiCapabilities.map(CCAGeneration.rmi) + rmeCapabilities.map(CCAGeneration.rme)
    for generation in candidates where system.checkExtension(UInt(generation.capability)) > 0 {
      // The smallest realm: 32 bits of protected space plus the shared half.
      if system.canCreateVM(type: generation.realmVMType | 33) { return generation }
    }
    return nil
  }

  /// The capability number that announced this generation.
  public var capability: UInt32 {
    switch self {
    case .rme(let capability), .rmi(let capability): return capability
    }
  }
}

extension CCAGeneration {
  /// The series names `--cca-abi` takes, each with the generation and capability it means.
  public static let namedSeries: [(name: String, generation: CCAGeneration)] = [
    ("v5", .rme(capability: 300)), ("v8", .rme(capability: 240)), ("v9", .rme(capability: 243)),
    ("v10", .rme(capability: 244)), ("v12", .rmi(capability: 247)), ("v13", .rmi(capability: 248)),
    ("v14", .rmi(capability: 249)), ("v15", .rmi(capability: 251)), ("rmi-253", .rmi(capability: 253)),
  ]

  /// The generation a series name stands for (`v5` also covers v6 and v7, which kept capability 300).
  public init?(seriesName: String) {
    guard let match = Self.namedSeries.first(where: { $0.name == seriesName }) else { return nil }
    self = match.generation
  }
}
