import ArgumentParser
import RealmMeasurement
import RealmVMM
import VirtIO

/// `realm-run measure`: predicts the Realm Initial Measurement of the machine the options describe
/// (RealmVMM's ``RIMPrediction`` on a ``RealmHostProfile``, with the options' overrides).
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
      if let rules { profile.use(rules: rules, keepingLPA2: fromHost) }
      if let lpa2 { profile.lpa2 = lpa2 }
      if let breakpoints { profile.breakpoints = breakpoints }
      if let watchpoints { profile.watchpoints = watchpoints }
      if let fixed = profile.fixedAlgorithm, fixed != config.realmOptions.algorithm {
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
    } catch let error as RIMPredictionError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as RealmHostProfile.ProbeError {
      RealmRun.report("--from-host: \(error.description)")
      throw ExitStatus.vmmError
    }
  }
}

extension RIMRules: ExpressibleByArgument {}
