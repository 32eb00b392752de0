import ArgumentParser
import CKVM
import GuestMemory
import KVM
import Platform
import RealmMeasurement
import VirtIO
import RealmVMM

/// `realm-run measure`: predicts the Realm Initial Measurement of the machine the options describe.
struct MeasureCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "measure",
    abstract: "Print the Realm Initial Measurement (RIM) a machine would get, without running it.",
    discussion: """
      Takes the same machine options as 'run', builds exactly what 'run' would populate (image, \
      initrd, DTB) and computes the RIM the RMM will report to the guest (RSI_MEASUREMENT_READ 0) \
      and put in its attestation token. The Realm Personalization Value is not part of the RIM.

      The RIM also depends on the host: the RMM's rules (--rules), and realm parameters the host \
      kernel fills in (--lpa2, --breakpoints, --watchpoints). The defaults are those of the \
      emulated CCA host (series v13 kernel, TF-RMM 0.9.0); --cca-abi v12 selects that host's \
      rules and parameters, and --from-host reads them from this machine's KVM (LPA2 is inferred \
      from a 52-bit IPA limit with 4 KiB pages; give --lpa2 on a host that runs with LPA2 but \
      has a smaller physical address range). Series v12+ kernels always ask for SHA-256.
      """)

  @OptionGroup var machine: MachineOptions

  @Option(help: ArgumentHelp(
    "Measurement rules: rmm-1.0 (TF-RMM 0.8.0, series v12 and older kernels) or rmm-2.0 (TF-RMM 0.9.0, series v13+). Default: from --cca-abi, else rmm-2.0.",
    valueName: "rules"))
  var rules: RIMRules?

  @Flag(inversion: .prefixedNo, help: "Whether the host kernel sets the Realm's LPA2 flag (default: yes for rmm-2.0 hosts, as the emulated v13 host does; no for v12 and older).")
  var lpa2: Bool?

  @Option(help: ArgumentHelp("num_bps: the raw ID_AA64DFR0_EL1.BRPs field the host gives a Realm, one less than the number of breakpoints (default 5).", valueName: "n"))
  var breakpoints: UInt8?

  @Option(help: ArgumentHelp("num_wps: the raw ID_AA64DFR0_EL1.WRPs field the host gives a Realm, one less than the number of watchpoints (default 3).", valueName: "n"))
  var watchpoints: UInt8?

  @Flag(help: "Read the rules, LPA2 and the breakpoint and watchpoint counts from this host's KVM (an arm64 CCA host).")
  var fromHost: Bool = false

  @Flag(help: "Print JSON: algorithm, rules, rim and the measured realm parameters.")
  var json: Bool = false

  func validate() throws {
    guard machine.realm else {
      throw ValidationError("measure is for Realms; drop --no-realm")
    }
    if let breakpoints, breakpoints > 15 { throw ValidationError("--breakpoints \(breakpoints): a 4-bit field (0-15)") }
    if let watchpoints, watchpoints > 15 { throw ValidationError("--watchpoints \(watchpoints): a 4-bit field (0-15)") }
    if machine.pmu && machine.pmuCounters == nil {
      throw ValidationError("--pmu: give --pmu-counters too; the number of counters is part of the measurement")
    }
  }

  func run() throws {
    do {
      let config = try machine.makeConfig()
      // The disks do not change the RIM, but a prediction for a machine that cannot start is a lie.
      for disk in config.disks { try BlockFile.check(path: disk.path) }
      var profile: RealmHostProfile
      if fromHost {
        profile = try RealmHostProfile.probeHost(series: config.realmOptions.series)
      } else {
        profile = RealmHostProfile.defaults(for: config.realmOptions.series)
      }
      if let rules, rules != profile.rules {
        profile.rules = rules
        profile.ripasOrder = .afterREC
        if lpa2 == nil && !fromHost { profile.lpa2 = rules == .rmm2_0 }
      }
      if let lpa2 { profile.lpa2 = lpa2 }
      if let breakpoints { profile.breakpoints = breakpoints }
      if let watchpoints { profile.watchpoints = watchpoints }
      if let fixed = profile.fixedAlgorithm, fixed.rawValue != config.realmOptions.algorithm.rawValue {
        RealmRun.report(
          "note: \(profile.hostDescription) kernels always ask the RMM for \(fixed.rawValue), so 'run' there gets a \(fixed.rawValue) RIM; this is the \(config.realmOptions.algorithm.rawValue) RIM asked for")
      }
      let prediction = try RIMPrediction(config: config, profile: profile, algorithmOverride: nil)
      print(json ? prediction.json : prediction.rim.hex)
    } catch let error as VMMError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as BlockFileError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as RIMError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as KVMError {
      RealmRun.report("--from-host: \(error.description)")
      throw ExitStatus.vmmError
    }
  }
}

extension RIMRules: ExpressibleByArgument {}

/// What a Realm's RIM depends on besides the machine itself: which measurement rules the host's
/// RMM follows, and the realm parameters its kernel fills in.
struct RealmHostProfile: Equatable {
  var rules: RIMRules
  var ripasOrder: RIPASOrder
  /// `RmiRealmParams.flags.lpa2`: Linux sets it when it runs with LPA2 itself (series v13+).
  var lpa2: Bool
  /// `num_bps`: the raw BRPs field of the Realm VM's ID_AA64DFR0_EL1 (from the RMM's features).
  var breakpoints: UInt8
  /// `num_wps`: the raw WRPs field.
  var watchpoints: UInt8
  /// The algorithm the kernel always asks for, when the VMM cannot choose (series v12+ kernels
  /// never set `hash_algo`, so it is SHA-256).
  var fixedAlgorithm: RIMHashAlgorithm?
  /// For messages: "series v13+", ...
  var hostDescription: String

  /// The emulated CCA host (`boot.sh`, series v13, TF-RMM 0.9.0 on QEMU `-cpu max`): LPA2 on,
  /// BRPs 5 and WRPs 3 (six breakpoints and four watchpoints), as read there with `--from-host`.
  static let emulatedV13 = RealmHostProfile(
    rules: .rmm2_0, ripasOrder: .afterREC, lpa2: true, breakpoints: 5, watchpoints: 3, fixedAlgorithm: .sha256,
    hostDescription: "series v13+")

  /// The defaults for a host of `series` (`nil`: the emulated v13 host), from its row: the RMM
  /// rules and INIT_RIPAS order of its hosts, LPA2 on where the kernel sets the flag (as the
  /// emulated v13 host does), and SHA-256 fixed where the VMM cannot choose (generation B).
  static func defaults(for series: CCASeries?) -> RealmHostProfile {
    guard let series else { return emulatedV13 }
    var profile = emulatedV13
    profile.rules = series.rimRules == .rmm1_0 ? .rmm1_0 : .rmm2_0
    profile.ripasOrder = series.ripasOrder == .beforeData ? .beforeData : .afterREC
    profile.lpa2 = series.setsLPA2
    profile.fixedAlgorithm = series.family == .rmi ? .sha256 : nil
    profile.hostDescription = "series \(series.series)"
    return profile
  }

  /// The profile of the host realm-run runs on: its series (or `series` if given), and the
  /// breakpoint and watchpoint fields of a probe Realm VM's vCPU (`KVM_GET_ONE_REG` of
  /// ID_AA64DFR0_EL1, which the CCA kernels fill from the RMM's feature register). LPA2 is
  /// inferred where the series' kernels set the flag: with 4 KiB pages KVM caps the IPA size at 48
  /// bits unless the kernel runs with LPA2, so a 52-bit limit means LPA2 is on; a host with LPA2 but
  /// a smaller PA range needs `--lpa2`.
  static func probeHost(series given: CCASeries?) throws(KVMError) -> RealmHostProfile {
    let system = try KVMSystem()
    guard let series = given ?? CCASeries.probe(system) else {
      throw .unsupported("this host's KVM has no Arm CCA support (see 'realm-run host-info')")
    }
    var profile = defaults(for: series)
    if series.setsLPA2 {
      profile.lpa2 = system.maxIPABits >= 52 && Self.hostPageSize == 4096
    }
    let vm = try system.createVM(type: series.realmVMType | 33)
    let vcpu = try vm.createVCPU(id: 0)
    let target = try vm.preferredTarget()
    var features = [Int32(CKVM_ARM_VCPU_PSCI_0_2)]
    if let rec = series.recFeature { features.append(rec) }
    try vcpu.initialize(target: target.target, features: features)
    let dfr0 = try vcpu.register(Self.sysreg(op0: 3, op1: 0, crn: 0, crm: 5, op2: 0))
    profile.breakpoints = UInt8((dfr0 >> 12) & 0xf)
    profile.watchpoints = UInt8((dfr0 >> 20) & 0xf)
    return profile
  }

  /// A system register's `KVM_GET_ONE_REG` id: KVM_REG_ARM64 | KVM_REG_SIZE_U64 |
  /// KVM_REG_ARM64_SYSREG | the op0/op1/CRn/CRm/op2 encoding.
  static func sysreg(op0: UInt64, op1: UInt64, crn: UInt64, crm: UInt64, op2: UInt64) -> UInt64 {
    CKVM_REG_ARM64 | CKVM_REG_SIZE_U64 | (0x0013 << 16) | (op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2)
  }

  static var hostPageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }
}

/// The RIM predicted for a machine configuration on a host.
struct RIMPrediction {
  let rim: RealmInitialMeasurement
  let launch: RealmLaunch
  let profile: RealmHostProfile
  let operations: [MeasuredOperation]

  /// - Parameter algorithmOverride: the algorithm the host really uses, if not the configured one.
  init(config: MachineConfig, profile: RealmHostProfile, algorithmOverride: RIMHashAlgorithm?) throws {
    let images = try LaunchImages(config: config)
    let ramEnd = MemoryMap.ramBase + config.memorySize
    let bits = IPALayout.minimumBits(reaching: ramEnd, realm: true)
    let algorithm = algorithmOverride ?? (config.realmOptions.algorithm == .sha256 ? .sha256 : .sha512)
    // realm_create_rd(): with SVE the kernel sets the flag and sve_vl = VQ - 1 (vector length / 128 - 1).
    let parameters = RealmParameters(
      ipaBits: UInt8(bits), hashAlgorithm: algorithm, lpa2: profile.lpa2,
      breakpoints: profile.breakpoints, watchpoints: profile.watchpoints,
      sve: config.sveVectorLength != nil, sveVectorLength: UInt8((config.sveVectorLength ?? 128) / 128 - 1),
      pmu: config.pmu, pmuCounters: UInt8(config.pmuCounters ?? 0))
    launch = RealmLaunch(
      parameters: parameters, ram: MemoryMap.ramBase..<ramEnd,
      regions: images.regions.map { RealmLaunch.Region(address: $0.address, bytes: $0.bytes) },
      bootCPU: try RECParameters(pc: images.layout.entry, gprs: [images.layout.deviceTreeAddress]))
    operations = try launch.operations(rules: profile.rules, ripasOrder: profile.ripasOrder)
    var rim = RealmInitialMeasurement(parameters: parameters)
    for operation in operations { try rim.extend(operation) }
    self.rim = rim
    self.profile = profile
  }

  /// The RIM `config` gets on this host (`run --print-rim`): the profile read from the host
  /// (its series, or `hostSeries` if given, picks the rules from its row), else the defaults for
  /// that series; and the algorithm the host's kernel really asks for.
  init(config: MachineConfig, hostSeries: CCASeries?) throws {
    let profile = (try? RealmHostProfile.probeHost(series: hostSeries)) ?? RealmHostProfile.defaults(for: hostSeries)
    try self.init(config: config, profile: profile, algorithmOverride: profile.fixedAlgorithm)
  }

  var json: String {
    let p = launch.parameters
    var counts = (data: 0, ripas: 0, rec: 0)
    for operation in operations {
      switch operation {
      case .data: counts.data += 1
      case .ripas: counts.ripas += 1
      case .rec: counts.rec += 1
      }
    }
    func hex(_ value: UInt64) -> String { "\"0x" + String(value, radix: 16) + "\"" }
    return """
      {"algorithm":"\(rim.algorithm.rawValue)","rules":"\(profile.rules.rawValue)","rim":"\(rim.hex)",\
      "realm_params":{"flags":\(p.flags),"lpa2":\(p.lpa2),"sve":\(p.sve),"pmu":\(p.pmu),"s2sz":\(p.ipaBits),\
      "sve_vl":\(p.sveVectorLength),"num_bps":\(p.breakpoints),"num_wps":\(p.watchpoints),\
      "pmu_num_ctrs":\(p.pmuCounters),"hash_algo":\(p.hashAlgorithm.rmiValue)},\
      "rec":{"pc":\(hex(launch.bootCPU.pc)),"x0":\(hex(launch.bootCPU.gprs[0]))},\
      "measured":{"data_granules":\(counts.data),"ripas_entries":\(counts.ripas),"recs":\(counts.rec)}}
      """
  }
}
