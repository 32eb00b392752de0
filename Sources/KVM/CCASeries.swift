import CKVM

/// One KVM CCA host series as realm-run meets it: everything realm-run does differently for it,
/// in one row of ``all`` (kvm-cca-api.md §1.2, §3-§5, §8, §11). Nothing compares capability
/// numbers: a capability that has no row is not a series, and adding a series is one row (plus
/// its tests).
public struct CCASeries: Sendable, Hashable, CustomStringConvertible {
  /// The UAPI family: how the realm is configured, created, populated and activated.
  public enum Family: String, Sendable, Hashable {
    /// Generation A: `KVM_CAP_ARM_RME` with `KVM_ENABLE_CAP` sub-commands (series v5-v11, RMM 1.0).
    case rme
    /// Generation B: `KVM_CAP_ARM_RMI`, the populate ioctl and activation at the first `KVM_RUN` (v12+).
    case rmi
  }

  /// How contents are copied into protected memory.
  public enum PopulateABI: String, Sendable, Hashable {
    /// `KVM_ENABLE_CAP` POPULATE, reading from the memslot's shared view (generation A).
    case enableCap
    /// `KVM_ARM_RMI_POPULATE` as `_IOW`, returning the bytes populated (v12).
    case returnsBytes
    /// `KVM_ARM_RMI_POPULATE` as `_IOWR`, the kernel advancing base/size/source (v13+).
    case advancesRequest
  }

  /// The RMM measurement rules the series' hosts follow (`realm-run measure --rules`).
  public enum RIMRules: String, Sendable, Hashable {
    /// RMM 1.0-rel0 (TF-RMM 0.8.0): INIT_RIPAS is measured.
    case rmm1_0 = "rmm-1.0"
    /// RMM 2.0-bet0 and later (TF-RMM 0.9.0): RIPAS initialisation is not measured.
    case rmm2_0 = "rmm-2.0"
  }

  /// When the host issues RMM 1.0's measured INIT_RIPAS.
  public enum RIPASOrder: String, Sendable, Hashable {
    /// At the first `KVM_RUN`, after the REC, over what populate left alone (v12; unmeasured later).
    case afterREC
    /// Asked for by the VMM over all RAM before it populates (generation A).
    case beforeData
  }

  /// The name `--cca-abi` takes.
  public let name: String
  /// The series it stands for, for people ("v5–v7", "v13").
  public let series: String
  public let family: Family
  /// The number of `KVM_CAP_ARM_RME` or `KVM_CAP_ARM_RMI` in this series.
  public let capability: UInt32
  /// `KVM_CREATE_VM`'s type for a realm, without the IPA bits in [7:0].
  public let realmVMType: UInt
  /// The vCPU feature bit at `KVM_ARM_VCPU_INIT` (and `KVM_ARM_VCPU_FINALIZE`) that makes a vCPU a
  /// REC; `nil` where the kernel makes RECs itself.
  public let recFeature: Int32?
  /// Whether the kernel may refuse the REC bit at `KVM_ARM_VCPU_INIT` (EINVAL) and take it only at
  /// finalize (v5), so that a refused init is retried without it.
  public let recOnlyAtFinalize: Bool
  /// The PSCI-complete vCPU ioctl, for series that have one.
  public let psciCompleteRequest: UInt?
  public let populate: PopulateABI
  /// Whether RAM is marked private with `KVM_SET_MEMORY_ATTRIBUTES` before it is populated (v12-v14);
  /// otherwise after activation (generation A), or never (v15+, guest_memfd memory starts private).
  public let privateBeforePopulate: Bool
  /// Whether RAM attributes are set on the VM fd at all.
  public let setsVMMemoryAttributes: Bool
  /// The RMM measurement rules of the series' hosts.
  public let rimRules: RIMRules
  /// The INIT_RIPAS order `measure` assumes.
  public let ripasOrder: RIPASOrder
  /// Whether the kernel sets the Realm's LPA2 flag when it runs with LPA2 itself (v13+; `measure`
  /// then assumes it does, and `--from-host` infers it). Older series never set it.
  public let setsLPA2: Bool

  /// Every series realm-run speaks, oldest first. v6 and v7 kept v5's capability (300) and are the
  /// `v5` row; v11's number is unconfirmed and v16's unknown, so they have none.
  public static let all: [CCASeries] = [
    CCASeries(
      name: "v5", series: "v5–v7", family: .rme, capability: 300, realmVMType: 0x100, recFeature: 8,
      recOnlyAtFinalize: true, psciCompleteRequest: CKVM_ARM_VCPU_RMM_PSCI_COMPLETE_V5, populate: .enableCap,
      privateBeforePopulate: false, setsVMMemoryAttributes: true, rimRules: .rmm1_0, ripasOrder: .beforeData, setsLPA2: false),
    CCASeries(
      name: "v8", series: "v8", family: .rme, capability: 240, realmVMType: 0x100, recFeature: 8,
      recOnlyAtFinalize: false, psciCompleteRequest: CKVM_ARM_VCPU_PSCI_COMPLETE, populate: .enableCap,
      privateBeforePopulate: false, setsVMMemoryAttributes: true, rimRules: .rmm1_0, ripasOrder: .beforeData, setsLPA2: false),
    CCASeries(
      name: "v9", series: "v9", family: .rme, capability: 243, realmVMType: 0x100, recFeature: 9,
      recOnlyAtFinalize: false, psciCompleteRequest: CKVM_ARM_VCPU_PSCI_COMPLETE, populate: .enableCap,
      privateBeforePopulate: false, setsVMMemoryAttributes: true, rimRules: .rmm1_0, ripasOrder: .beforeData, setsLPA2: false),
    CCASeries(
      name: "v10", series: "v10", family: .rme, capability: 244, realmVMType: 0x100, recFeature: 9,
      recOnlyAtFinalize: false, psciCompleteRequest: CKVM_ARM_VCPU_PSCI_COMPLETE, populate: .enableCap,
      privateBeforePopulate: false, setsVMMemoryAttributes: true, rimRules: .rmm1_0, ripasOrder: .beforeData, setsLPA2: false),
    CCASeries(
      name: "v12", series: "v12", family: .rmi, capability: 247, realmVMType: 0x100, recFeature: nil,
      recOnlyAtFinalize: false, psciCompleteRequest: CKVM_ARM_VCPU_PSCI_COMPLETE, populate: .returnsBytes,
      privateBeforePopulate: true, setsVMMemoryAttributes: true, rimRules: .rmm1_0, ripasOrder: .afterREC, setsLPA2: false),
    CCASeries(
      name: "v13", series: "v13", family: .rmi, capability: 248, realmVMType: 0x100, recFeature: nil,
      recOnlyAtFinalize: false, psciCompleteRequest: CKVM_ARM_VCPU_PSCI_COMPLETE, populate: .advancesRequest,
      privateBeforePopulate: true, setsVMMemoryAttributes: true, rimRules: .rmm2_0, ripasOrder: .afterREC, setsLPA2: true),
    CCASeries(
      name: "v14", series: "v14", family: .rmi, capability: 249, realmVMType: 1 << 30, recFeature: nil,
      recOnlyAtFinalize: false, psciCompleteRequest: nil, populate: .advancesRequest,
      privateBeforePopulate: true, setsVMMemoryAttributes: true, rimRules: .rmm2_0, ripasOrder: .afterREC, setsLPA2: true),
    CCASeries(
      name: "v15", series: "v15", family: .rmi, capability: 251, realmVMType: 1 << 30, recFeature: nil,
      recOnlyAtFinalize: false, psciCompleteRequest: nil, populate: .advancesRequest,
      privateBeforePopulate: false, setsVMMemoryAttributes: false, rimRules: .rmm2_0, ripasOrder: .afterREC, setsLPA2: true),
    CCASeries(
      name: "rmi-253", series: "newer than v15", family: .rmi, capability: 253, realmVMType: 1 << 30, recFeature: nil,
      recOnlyAtFinalize: false, psciCompleteRequest: nil, populate: .advancesRequest,
      privateBeforePopulate: false, setsVMMemoryAttributes: false, rimRules: .rmm2_0, ripasOrder: .afterREC, setsLPA2: true),
  ]

  /// For `host-info` and messages: "KVM_CAP_ARM_RMI (248), series v13".
  public var description: String {
    "\(family == .rme ? "KVM_CAP_ARM_RME" : "KVM_CAP_ARM_RMI") (\(capability)), series \(series)"
  }

  /// The order the probe asks in: the RMI rows, then the RME rows, each oldest first.
  public static var probeOrder: [CCASeries] {
    all.filter { $0.family == .rmi } + all.filter { $0.family == .rme }
  }

  /// Probes `system` for CCA support.
  ///
  /// A capability number alone proves nothing: the series' numbers are taken by unrelated
  /// capabilities in other kernels (251 answers on a stock 7.3 arm64 kernel; 248 is s390-only on
  /// the CCA host's 7.2 base). So a row counts only if the kernel also accepts a realm VM of that
  /// row's type; a kernel without CCA refuses the type bits. On hosts other than arm64 the probe
  /// answers `nil` without asking.
  public static func probe(_ system: KVMSystem) -> CCASeries? {
    #if arch(arm64)
    return probe(system, isArm64: true)
    #else
    return probe(system, isArm64: false)
    #endif
  }

  /// ``probe(_:)`` with the host architecture given (so tests can run it anywhere).
  public static func probe(_ system: KVMSystem, isArm64: Bool) -> CCASeries? {
    guard isArm64 else { return nil }
    for series in probeOrder where system.checkExtension(UInt(series.capability)) > 0 {
      // The smallest realm: 32 bits of protected space plus the shared half.
      if system.canCreateVM(type: series.realmVMType | 33) { return series }
    }
    return nil
  }
}

extension CCASeries {
  /// The series a `--cca-abi` name stands for.
  public init?(name: String) {
    guard let row = Self.all.first(where: { $0.name == name }) else { return nil }
    self = row
  }
}

extension CCASeries {
  /// The table of series in README.md's "Realms" section, one line per row of ``all`` (a unit test
  /// checks that README.md holds exactly this).
  public static var markdownTable: String {
    var lines = [
      "| `--cca-abi` | series | capability | realm VM type | REC bit at VCPU_INIT | populate | activation | RAM private | `measure` rules |",
      "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in all {
      let capability = "`\(row.family == .rme ? "KVM_CAP_ARM_RME" : "KVM_CAP_ARM_RMI")` \(row.capability)"
      let vmType = row.realmVMType == 1 << 30 ? "`1<<30 \\| IPA bits`" : "`0x\(String(row.realmVMType, radix: 16)) \\| IPA bits`"
      let rec = row.recFeature.map { row.recOnlyAtFinalize ? "\($0), taken only at FINALIZE" : "\($0), then FINALIZE" } ?? "none"
      let populate: String
      switch row.populate {
      case .enableCap: populate = "`ENABLE_CAP` POPULATE (from the shared view)"
      case .returnsBytes: populate = "`KVM_ARM_RMI_POPULATE` `_IOW` (returns bytes)"
      case .advancesRequest: populate = "`KVM_ARM_RMI_POPULATE` `_IOWR` (loop until size 0)"
      }
      let activation = row.family == .rme ? "`ENABLE_CAP` ACTIVATE" : "first `KVM_RUN`"
      let ram =
        row.privateBeforePopulate ? "before populate" : row.setsVMMemoryAttributes ? "after activation" : "guest_memfd (no attributes)"
      var rules = row.rimRules == .rmm1_0 ? "RMM 1.0" : "RMM 2.0"
      if row.rimRules == .rmm1_0 { rules += row.ripasOrder == .beforeData ? ", INIT_RIPAS first" : ", INIT_RIPAS after the REC" }
      if row.setsLPA2 { rules += ", LPA2" }
      lines.append("| \(row.name) | \(row.series) | \(capability) | \(vmType) | \(rec) | \(populate) | \(activation) | \(ram) | \(rules) |")
    }
    return lines.joined(separator: "\n")
  }
}
