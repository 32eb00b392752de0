import ArgumentParser
import Attestation
import FirmwareCore
import Platform
import RealmMeasurement
import RealmVMM
import VirtIO

/// `realm-run measure`: predicts the Realm Initial Measurement of the machine the options describe
/// (RealmVMM's ``RIMPrediction`` on a ``RealmHostProfile``, with the options' overrides).
struct MeasureCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "measure",
    abstract: "Print the Realm Initial Measurement (RIM) and the reference values a machine would get, without running it.",
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

      --json and --corim add the other reference values a verifier compares the Realm's \
      attestation token with: the Realm Personalization Value (--realm-pv, zero-padded to 64 \
      bytes) and the REMs. A direct kernel boot leaves the REMs zero. The bundled firmware \
      booting a disk's BLS entry extends REM0 with the DTB, REM1 with the kernel file, REM2 with \
      the command line and the initrds (each the SHA-256 of its bytes): measure reads the disks \
      as the firmware does and predicts them. A UEFI boot or another firmware leaves them \
      unknown (null; the CoRIM leaves them out, so they match any value).

      --corim writes the values as an unsigned CoRIM (CBOR, deterministic) for Veraison: the \
      current Arm CCA realm profile (tag:arm.com,2025:cca_realm#1.0.0, Veraison v0.0.2605 and \
      later) or, with --corim-layout legacy, the layout of Veraison v0.0.2604 and older (which \
      needs all four REMs).

      --measurement-log writes the launch measurement log: every command the RMM measures, in the \
      host's order (REALM_CREATE with the realm parameters, each image with its address, size \
      and digest, the boot REC, and under RMM 1.0 each INIT_RIPAS entry), as a TCG crypto-agile \
      event log (PCR 0). A verifier with the images replays it to the RIM: 'realm-run verify \
      --measurement-log FILE --image FILE...'. 'run --measurement-log' writes the same log.

      An existing --corim or --measurement-log file is replaced only with --force, and never \
      when it is one of the machine's files.
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

  @Flag(help: "Print JSON: algorithm, rules, rim, the measured realm parameters, rems and rpv.")
  var json: Bool = false

  @Option(help: ArgumentHelp("Write the reference values (RIM, known REMs, RPV) as an unsigned CoRIM to this file.", valueName: "file"))
  var corim: String?

  @Option(help: ArgumentHelp("The CoRIM layout: current (Veraison v0.0.2605 and later) or legacy (v0.0.2604 and older).", valueName: "layout"))
  var corimLayout: RealmCoRIM.Layout = .current

  @Option(help: ArgumentHelp("Write the launch measurement log (a TCG event log of every measured command) to this file.", valueName: "file"))
  var measurementLog: String?

  @Flag(help: "Replace the --corim and --measurement-log files if they exist.")
  var force: Bool = false

  func validate() throws {
    guard machine.realm else {
      throw ValidationError("measure is for Realms; drop --no-realm")
    }
    if let breakpoints, breakpoints > 15 { throw ValidationError("--breakpoints \(breakpoints): a 4-bit field (0-15)") }
    if let watchpoints, watchpoints > 15 { throw ValidationError("--watchpoints \(watchpoints): a 4-bit field (0-15)") }
    if corim == nil && corimLayout != .current { throw ValidationError("--corim-layout is for --corim") }
    if corim == nil && measurementLog == nil && force { throw ValidationError("--force is for --corim and --measurement-log") }
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
      if let measurementLog {
        try OutputFile(path: measurementLog, option: "--measurement-log")
          .write(try prediction.launchLog().encoded(), inputs: config.inputFiles, replace: force)
      }
      guard json || corim != nil else {
        print(prediction.rim.hex)
        return
      }
      let values = RealmReferenceValues(
        algorithm: prediction.rim.algorithm, rim: prediction.rim.digest, rems: predictedREMs(config, prediction),
        personalization: RealmReferenceValues.paddedPersonalization(config.realmOptions.personalization ?? []) ?? [])
      if let corim {
        try OutputFile(path: corim, option: "--corim").write(
          try RealmCoRIM(values: values, layout: corimLayout).encoded(), inputs: config.inputFiles, replace: force)
      }
      print(json ? prediction.json(appending: values.jsonFields) : prediction.rim.hex)
    } catch let error as VMMError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as BlockFileError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as RIMPredictionError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as CoRIMError {
      RealmRun.report("--corim: \(error.description)")
      throw ExitStatus.vmmError
    } catch let error as OutputFileError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as RealmHostProfile.ProbeError {
      RealmRun.report("--from-host: \(error.description)")
      throw ExitStatus.vmmError
    }
  }

  /// The REMs the machine's Realm will hold when its OS starts, nil where not known in advance
  /// (with one note on stderr saying why).
  func predictedREMs(_ config: MachineConfig, _ prediction: RIMPrediction) -> [[UInt8]?] {
    let algorithm = prediction.rim.algorithm
    guard case .firmware(let path) = config.boot else {
      // a direct kernel boot: nothing extends a REM before the OS
      return MeasuredBoot.registers(after: [], algorithm: algorithm)
    }
    guard isBundledFirmware(path) else {
      RealmRun.report("note: REMs unknown: \(path) is not the bundled firmware, whose measured boot measure knows")
      return [nil, nil, nil, nil]
    }
    do throws(FirmwareBootPrediction.Unknown) {
      let boot = try FirmwareBootPrediction(deviceTree: prediction.deviceTree, disks: config.disks, memorySize: config.memorySize)
      return MeasuredBoot.registers(after: boot.measurements, algorithm: algorithm)
    } catch {
      RealmRun.report("note: REMs unknown: \(error.description)")
      return [nil, nil, nil, nil]
    }
  }

  /// Whether `path` is the bundled firmware's file (the default, or --firmware naming it).
  func isBundledFirmware(_ path: String) -> Bool {
    guard machine.firmware != nil else { return true }
    guard let bundled = try? BundledFirmware.locate() else { return false }
    guard let identity = BlockFile.identity(of: path), let bundledIdentity = BlockFile.identity(of: bundled) else { return false }
    return identity == bundledIdentity
  }
}

extension RealmCoRIM.Layout: ExpressibleByArgument {}

extension RIMRules: ExpressibleByArgument {}
