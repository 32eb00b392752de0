import CKVM
import FirmwareCore
import KVM
import Platform
import RealmMeasurement

/// What a Realm's RIM depends on besides the machine itself: which measurement rules the host's
/// RMM follows, and the realm parameters its kernel fills in.
///
/// Start from ``defaults(for:)`` (no host needed) or ``probeHost(series:)`` (this host's KVM),
/// change what is known better, and give it to ``RIMPrediction``.
public struct RealmHostProfile: Sendable, Equatable {
  /// The RMM's measurement rules.
  public var rules: RIMRules
  /// When the host issues RMM 1.0's measured INIT_RIPAS.
  public var ripasOrder: RIPASOrder
  /// `RmiRealmParams.flags.lpa2`: Linux sets it when it runs with LPA2 itself (series v13+).
  public var lpa2: Bool
  /// `num_bps`: the raw BRPs field of the Realm VM's ID_AA64DFR0_EL1 (from the RMM's features).
  public var breakpoints: UInt8
  /// `num_wps`: the raw WRPs field.
  public var watchpoints: UInt8
  /// The algorithm the kernel always asks for, when the VMM cannot choose (series v12+ kernels
  /// never set `hash_algo`, so it is SHA-256).
  public var fixedAlgorithm: RealmHashAlgorithm?
  /// For messages: "series v13+", ...
  public var hostDescription: String

  public init(
    rules: RIMRules, ripasOrder: RIPASOrder, lpa2: Bool, breakpoints: UInt8, watchpoints: UInt8,
    fixedAlgorithm: RealmHashAlgorithm?, hostDescription: String
  ) {
    self.rules = rules
    self.ripasOrder = ripasOrder
    self.lpa2 = lpa2
    self.breakpoints = breakpoints
    self.watchpoints = watchpoints
    self.fixedAlgorithm = fixedAlgorithm
    self.hostDescription = hostDescription
  }

  /// The emulated CCA host (`boot.sh`, series v13, TF-RMM 0.9.0 on QEMU `-cpu max`): LPA2 on,
  /// BRPs 5 and WRPs 3 (six breakpoints and four watchpoints), as read there with `--from-host`.
  public static let emulatedV13 = RealmHostProfile(
    rules: .rmm2_0, ripasOrder: .afterREC, lpa2: true, breakpoints: 5, watchpoints: 3, fixedAlgorithm: .sha256,
    hostDescription: "series v13+")

  /// The defaults for a host of `series` (`nil`: the emulated v13 host), from its row: the RMM
  /// rules and INIT_RIPAS order of its hosts, LPA2 on where the kernel sets the flag (as the
  /// emulated v13 host does), and SHA-256 fixed where the VMM cannot choose (generation B).
  public static func defaults(for series: CCASeries?) -> RealmHostProfile {
    guard let series else { return emulatedV13 }
    var profile = emulatedV13
    profile.rules = series.rimRules == .rmm1_0 ? .rmm1_0 : .rmm2_0
    profile.ripasOrder = series.ripasOrder == .beforeData ? .beforeData : .afterREC
    profile.lpa2 = series.setsLPA2
    profile.fixedAlgorithm = series.family == .rmi ? .sha256 : nil
    profile.hostDescription = "series \(series.series)"
    return profile
  }

  /// Measures with `rules` rather than the profile's own: a host whose RMM follows other rules
  /// than its series' row says is a generation B host (INIT_RIPAS after the REC), and LPA2 then
  /// follows the rules (on for RMM 2.0, as the emulated v13 host has it) unless `keepingLPA2`
  /// (a probed value). Rules the profile has already change nothing.
  public mutating func use(rules: RIMRules, keepingLPA2: Bool) {
    guard rules != self.rules else { return }
    self.rules = rules
    ripasOrder = .afterREC
    if !keepingLPA2 { lpa2 = rules == .rmm2_0 }
  }

  /// Why ``probe(_:series:)`` or ``probeHost(series:)`` could not read a host.
  public enum ProbeError: Error, Equatable, CustomStringConvertible {
    /// This host's KVM offers no Arm CCA series realm-run knows.
    case noCCA
    /// Opening KVM, or a call on the probe Realm VM or its vCPU, failed.
    case kvm(KVMError)

    public var description: String {
      switch self {
      case .noCCA: return "this host's KVM has no Arm CCA support (see 'realm-run host-info')"
      case .kvm(let error): return error.description
      }
    }
  }

  /// The profile of the host realm-run runs on (``probe(_:series:)`` of `/dev/kvm`). Needs an
  /// arm64 CCA host.
  public static func probeHost(series: CCASeries?) throws(ProbeError) -> RealmHostProfile {
    let system: KVMSystem
    do { system = try KVMSystem() } catch { throw .kvm(error) }
    return try probe(system, series: series)
  }

  /// The profile of the host `system` belongs to: its series (or `series` if given), and the
  /// breakpoint and watchpoint fields of a probe Realm VM's vCPU (`KVM_GET_ONE_REG` of
  /// ID_AA64DFR0_EL1, which the CCA kernels fill from the RMM's feature register). LPA2 is
  /// inferred where the series' kernels set the flag: with 4 KiB pages KVM caps the IPA size at 48
  /// bits unless the kernel runs with LPA2, so a 52-bit limit means LPA2 is on; a host with LPA2 but
  /// a smaller PA range needs ``lpa2`` set by hand.
  public static func probe(_ system: KVMSystem, series given: CCASeries?) throws(ProbeError) -> RealmHostProfile {
    guard let series = given ?? CCASeries.probe(system) else { throw .noCCA }
    var profile = defaults(for: series)
    if series.setsLPA2 {
      profile.lpa2 = system.maxIPABits >= 52 && hostPageSize == 4096
    }
    let dfr0: UInt64
    do { dfr0 = try debugFeatures(system, series: series) } catch { throw .kvm(error) }
    profile.breakpoints = UInt8((dfr0 >> 12) & 0xf)
    profile.watchpoints = UInt8((dfr0 >> 20) & 0xf)
    return profile
  }

  /// ID_AA64DFR0_EL1 of the boot vCPU of the smallest Realm VM of `series` (32 bits of protected
  /// space plus the shared half), the vCPU initialised as a machine's boot vCPU is.
  static func debugFeatures(_ system: KVMSystem, series: CCASeries) throws(KVMError) -> UInt64 {
    let lifecycle = RealmLifecycle(series: series)
    let vm = try system.createVM(type: lifecycle.vmType(ipaBits: 33))
    let vcpu = try vm.createVCPU(id: 0)
    let target = try vm.preferredTarget()
    try Machine.initialize(
      vcpu, target: target.target, features: MachineConfig.vcpuFeatures(id: 0, sve: false, pmu: false), realm: lifecycle)
    return try vcpu.register(CKVM_REG_ID_AA64DFR0_EL1)
  }

  /// This host's page size (LPA2 needs 4 KiB pages).
  static var hostPageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }
}
