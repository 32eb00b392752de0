import CKVM
import FirmwareCore
import KVM
import RealmMeasurement
import TestSupport
import Testing
@testable import RealmVMM

/// `measure`'s library half: the host profiles, the RIM prediction and its JSON (byte for byte as
/// the CLI printed it before the logic moved here), and the host probe against recorded KVM calls.
@Suite struct RIMPredictionTests {
  /// A 64-bit arm64 Image of 9000 bytes (image_size 1 MiB, 4 KiB pages, LE) in `scratch`.
  static func kernel(in scratch: ScratchDirectory) -> String {
    var image = (0..<9000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    image.replaceSubrange(0..<64, with: KernelImageTests.header(imageSize: 0x10_0000))
    return scratch.file("Image", image)
  }

  /// `measure --json` of the configurations of ``jsonIsAsTheCLIPrintedIt()``, from before the move.
  static let expected: [String: String] = [
    "plain-v13": #"{"algorithm":"sha256","rules":"rmm-2.0","rim":"a268650e16a28a5a407033e63d90b5e7d19edbccfd4ca8a2f8bce8ebb9218672","realm_params":{"flags":1,"lpa2":true,"sve":false,"pmu":false,"s2sz":33,"sve_vl":0,"num_bps":5,"num_wps":3,"pmu_num_ctrs":0,"hash_algo":0},"rec":{"pc":"0x80000000","x0":"0x83e00000"},"measured":{"data_granules":19,"ripas_entries":0,"recs":1}}"#,
    "plain-v12": #"{"algorithm":"sha256","rules":"rmm-1.0","rim":"49bd4d90139a59c5b20168cb5f42af14471592b63de0b3ac466b99158a4ee5be","realm_params":{"flags":0,"lpa2":false,"sve":false,"pmu":false,"s2sz":33,"sve_vl":0,"num_bps":5,"num_wps":3,"pmu_num_ctrs":0,"hash_algo":0},"rec":{"pc":"0x80000000","x0":"0x83e00000"},"measured":{"data_granules":19,"ripas_entries":1035,"recs":1}}"#,
    "full-v13": #"{"algorithm":"sha512","rules":"rmm-2.0","rim":"281aa71ce5181d879fd1e0d233cd16b3d95271b387781f721c856b0613949947192374a62e05f4c1cd7bd2312ea7ae7bb1005caae238399ec38e496ccb426bb9","realm_params":{"flags":7,"lpa2":true,"sve":true,"pmu":true,"s2sz":33,"sve_vl":3,"num_bps":5,"num_wps":3,"pmu_num_ctrs":6,"hash_algo":1},"rec":{"pc":"0x80000000","x0":"0x87e00000"},"measured":{"data_granules":21,"ripas_entries":0,"recs":1}}"#,
    "full-v12": #"{"algorithm":"sha512","rules":"rmm-1.0","rim":"1f360805d30ec0a2602feb1396d6b076b1c6ca15f642cd34c2ac197ccb07e56b805de08c21dc8646fb5adc3b6a01a60cc3d8ea0e47c42085748ab7dd4266c25e","realm_params":{"flags":6,"lpa2":false,"sve":true,"pmu":true,"s2sz":33,"sve_vl":3,"num_bps":5,"num_wps":3,"pmu_num_ctrs":6,"hash_algo":1},"rec":{"pc":"0x80000000","x0":"0x87e00000"},"measured":{"data_granules":21,"ripas_entries":1576,"recs":1}}"#,
    "full-v5": #"{"algorithm":"sha512","rules":"rmm-1.0","rim":"b02cd60070284a1912fd3041962d38d9e487913d634f118c3eb3f6a7555cecf1f3d595df32e25aec78c841c26934f45fceb31d039e4859e74e67c557d26338e3","realm_params":{"flags":6,"lpa2":false,"sve":true,"pmu":true,"s2sz":33,"sve_vl":3,"num_bps":5,"num_wps":3,"pmu_num_ctrs":6,"hash_algo":1},"rec":{"pc":"0x80000000","x0":"0x87e00000"},"measured":{"data_granules":21,"ripas_entries":64,"recs":1}}"#,
  ]

  @Test func jsonIsAsTheCLIPrintedIt() throws {
    let scratch = ScratchDirectory()
    let kernel = Self.kernel(in: scratch)
    let initrd = scratch.file("initrd", [UInt8](repeating: 0x5A, count: 5000))
    let plain = MachineConfig(memorySize: 64 << 20, cpus: 1, boot: .kernel(path: kernel, initrd: nil), realm: true)
    var full = MachineConfig(
      memorySize: 128 << 20, cpus: 3, boot: .kernel(path: kernel, initrd: initrd), kernelParameters: "quiet",
      realm: true, realmOptions: RealmOptions(algorithm: .sha512), sveVectorLength: 512, pmu: true, pmuCounters: 6)
    full.console = .virtio
    for (name, config, series) in [("plain-v13", plain, nil), ("plain-v12", plain, "v12"), ("full-v13", full, nil),
                                   ("full-v12", full, "v12"), ("full-v5", full, "v5")] {
      let profile = RealmHostProfile.defaults(for: series.flatMap(CCASeries.init(name:)))
      let prediction = try RIMPrediction(config: config, profile: profile, algorithmOverride: nil)
      #expect(prediction.json == Self.expected[name], "\(name)")
      #expect(prediction.json.contains(#""rim":"\#(prediction.rim.hex)""#))
    }
  }

  /// The profile's fixed algorithm is the one measured when it overrides the configured one
  /// (`run --print-rim` on a generation B host).
  @Test func algorithmOverride() throws {
    let scratch = ScratchDirectory()
    let config = MachineConfig(
      memorySize: 64 << 20, cpus: 1, boot: .kernel(path: Self.kernel(in: scratch), initrd: nil), realm: true,
      realmOptions: RealmOptions(algorithm: .sha512))
    let profile = RealmHostProfile.emulatedV13
    #expect(try RIMPrediction(config: config, profile: profile, algorithmOverride: nil).rim.algorithm == .sha512)
    let overridden = try RIMPrediction(config: config, profile: profile, algorithmOverride: profile.fixedAlgorithm)
    #expect(overridden.rim.algorithm == .sha256 && overridden.launch.parameters.hashAlgorithm.rmiValue == 0)
  }

  /// A boot file that cannot be read is the images' error, with the machine's own message.
  @Test func unreadableKernelIsAnImagesError() {
    let config = MachineConfig(memorySize: 64 << 20, cpus: 1, boot: .kernel(path: "/nonexistent/k", initrd: nil), realm: true)
    do {
      _ = try RIMPrediction(config: config, profile: .emulatedV13, algorithmOverride: nil)
      Issue.record("predicted a RIM without a kernel")
    } catch {
      guard case .images = error else { Issue.record("\(error)"); return }
      #expect(error.description == "cannot open the kernel /nonexistent/k: No such file or directory")
    }
  }

  /// Each series' defaults come from its row.
  @Test func defaultsFollowTheSeriesRow() throws {
    #expect(RealmHostProfile.defaults(for: nil) == .emulatedV13)
    let v12 = RealmHostProfile.defaults(for: try #require(CCASeries(name: "v12")))
    #expect(v12.rules == .rmm1_0 && v12.ripasOrder == .afterREC && !v12.lpa2 && v12.fixedAlgorithm == .sha256)
    #expect(v12.hostDescription == "series v12")
    let v5 = RealmHostProfile.defaults(for: try #require(CCASeries(name: "v5")))
    #expect(v5.rules == .rmm1_0 && v5.ripasOrder == .beforeData && !v5.lpa2 && v5.fixedAlgorithm == nil)
    let v15 = RealmHostProfile.defaults(for: try #require(CCASeries(name: "v15")))
    #expect(v15.rules == .rmm2_0 && v15.lpa2 && v15.fixedAlgorithm == .sha256 && v15.hostDescription == "series v15")
    #expect(v15.breakpoints == 5 && v15.watchpoints == 3)
  }

  /// Other rules than the row's: a generation B order, and LPA2 as those rules' hosts have it
  /// unless it was probed.
  @Test func otherRules() throws {
    var profile = RealmHostProfile.defaults(for: try #require(CCASeries(name: "v5")))
    profile.use(rules: .rmm2_0, keepingLPA2: false)
    #expect(profile.rules == .rmm2_0 && profile.ripasOrder == .afterREC && profile.lpa2)
    profile = .emulatedV13
    profile.use(rules: .rmm1_0, keepingLPA2: true)
    #expect(profile.rules == .rmm1_0 && profile.lpa2)
    profile.use(rules: .rmm1_0, keepingLPA2: false)  // the rules it has: nothing changes
    #expect(profile.lpa2)
    var v5 = RealmHostProfile.defaults(for: try #require(CCASeries(name: "v5")))
    v5.use(rules: .rmm1_0, keepingLPA2: false)
    #expect(v5 == RealmHostProfile.defaults(for: try #require(CCASeries(name: "v5"))))
  }

  /// One list of vCPU features: the boot vCPU has PSCI 0.2, the others start powered off, SVE and
  /// the PMU as asked for; a machine's vCPUs take the list of its config.
  @Test func vcpuFeatures() {
    let psci = Int32(CKVM_ARM_VCPU_PSCI_0_2), off = Int32(CKVM_ARM_VCPU_POWER_OFF)
    #expect(MachineConfig.vcpuFeatures(id: 0, sve: false, pmu: false) == [psci])
    #expect(MachineConfig.vcpuFeatures(id: 2, sve: true, pmu: true) == [psci, off, Int32(CKVM_ARM_VCPU_SVE), Int32(CKVM_ARM_VCPU_PMU_V3)])
    let config = MachineConfig(memorySize: 64 << 20, cpus: 2, boot: .firmware(path: "fw"), sveVectorLength: 256, pmu: true)
    #expect(config.vcpuFeatures(id: 1) == MachineConfig.vcpuFeatures(id: 1, sve: true, pmu: true))
  }

  // MARK: The probe, against recorded KVM calls

  static let createVM: UInt = 0xAE01
  static let vcpuInit: UInt = 0x4020_AEAE
  static let getOneReg: UInt = 0x4010_AEAB

  /// A KVM that answers ID_AA64DFR0_EL1 with `dfr0`, reports `capabilities`, and refuses what
  /// `refuse` says.
  static func system(
    capabilities: [UInt: Int32] = [:], dfr0: UInt64 = 3 << 20 | 5 << 12 | 0x106, refuse: (@Sendable (UInt, [UInt8]) -> Int32?)? = nil
  ) throws -> (KVMSystem, RecordingKVMSyscalls) {
    let syscalls = RecordingKVMSyscalls(capabilities: capabilities, pointer: { _, request, argument in
      if let refuse, let answer = refuse(request, Array(argument)) { return answer }
      switch request {
      case 0x8020_AEAF:  // KVM_ARM_PREFERRED_TARGET: target 5
        argument.storeBytes(of: UInt32(5), toByteOffset: 0, as: UInt32.self)
      case getOneReg where argument.load(fromByteOffset: 0, as: UInt64.self) == 0x6030_0000_0013_C028:
        let address = argument.load(fromByteOffset: 8, as: UInt64.self)
        UnsafeMutableRawPointer(bitPattern: UInt(address))!.storeBytes(of: dfr0, as: UInt64.self)
      default:
        break
      }
      return nil
    })
    return (try KVMSystem(syscalls: syscalls), syscalls)
  }

  /// The first feature word of each KVM_ARM_VCPU_INIT recorded.
  static func initFeatures(_ syscalls: RecordingKVMSyscalls) -> [UInt32] {
    syscalls.calls.filter { $0.request == vcpuInit }.map { $0.bytes!.le(UInt32.self, at: 4) }
  }

  /// ID_AA64DFR0_EL1's KVM register id: KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG |
  /// op0 3, op1 0, CRn 0, CRm 5, op2 0.
  @Test func debugFeatureRegisterID() {
    let arm64SysregU64: UInt64 = 0x6000_0000_0000_0000 | 0x0030_0000_0000_0000 | 0x0013 << 16
    let encoding: UInt64 = 3 << 14 | 5 << 3
    #expect(CKVM_REG_ID_AA64DFR0_EL1 == arm64SysregU64 | encoding)
  }

  /// Series v13: the row's rules, LPA2 from a 52-bit IPA limit (with 4 KiB pages), and BRPs and
  /// WRPs from the probe vCPU, a boot vCPU of the smallest realm VM.
  @Test func probeReadsTheHost() throws {
    let v13 = try #require(CCASeries(name: "v13"))
    let busy: UInt64 = 0xFFFF_FFFF_FF0F_0FFF
    let dfr0 = busy | 7 << 20 | 2 << 12  // WRPs 7, BRPs 2, every other field set
    let (system, syscalls) = try Self.system(capabilities: [UInt(CKVM_CAP_ARM_VM_IPA_SIZE): 52], dfr0: dfr0)
    let profile = try RealmHostProfile.probe(system, series: v13)
    #expect(profile.rules == .rmm2_0 && profile.breakpoints == 2 && profile.watchpoints == 7)
    #expect(profile.lpa2 == (RealmHostProfile.hostPageSize == 4096))
    #expect(syscalls.calls.filter { $0.request == Self.createVM }.map(\.value) == [0x100 | 33])
    #expect(Self.initFeatures(syscalls) == [1 << UInt32(CKVM_ARM_VCPU_PSCI_0_2)])
    let (small, _) = try Self.system(capabilities: [UInt(CKVM_CAP_ARM_VM_IPA_SIZE): 48])
    #expect(try !RealmHostProfile.probe(small, series: v13).lpa2)
  }

  /// Generation A: the probe vCPU is a REC, as a machine's boot vCPU is; on v5, which takes the REC
  /// bit only at finalize, a refused init is retried without it.
  @Test func probeOnGenerationA() throws {
    let (system, syscalls) = try Self.system()
    let v9 = try RealmHostProfile.probe(system, series: try #require(CCASeries(name: "v9")))
    #expect(v9.rules == .rmm1_0 && v9.ripasOrder == .beforeData && v9.breakpoints == 5 && v9.watchpoints == 3)
    let psci: UInt32 = 1 << 2
    #expect(Self.initFeatures(syscalls) == [psci | 1 << 9])
    let (v5System, v5Calls) = try Self.system(refuse: { request, bytes in
      request == Self.vcpuInit && bytes.le(UInt32.self, at: 4) & (1 << 8) != 0 ? -22 : nil
    })
    _ = try RealmHostProfile.probe(v5System, series: try #require(CCASeries(name: "v5")))
    #expect(Self.initFeatures(v5Calls) == [psci | 1 << 8, psci])
  }

  /// A KVM without CCA, and a KVM call that fails, each with its own error and message.
  @Test func probeErrors() throws {
    let (plain, _) = try Self.system()
    #expect(throws: RealmHostProfile.ProbeError.noCCA) { try RealmHostProfile.probe(plain, series: nil) }
    #expect(RealmHostProfile.ProbeError.noCCA.description == "this host's KVM has no Arm CCA support (see 'realm-run host-info')")
    let v13 = try #require(CCASeries(name: "v13"))
    let (refusing, _) = try Self.system(refuse: { request, _ in request == Self.getOneReg ? -1 : nil })
    #expect(throws: RealmHostProfile.ProbeError.kvm(.ioctl("KVM_GET_ONE_REG", errno: 1))) {
      try RealmHostProfile.probe(refusing, series: v13)
    }
    #if !arch(arm64)
    // Not an arm64 host: no CCA, or no KVM at all.
    #expect(throws: RealmHostProfile.ProbeError.self) { try RealmHostProfile.probeHost(series: nil) }
    #endif
  }
}
