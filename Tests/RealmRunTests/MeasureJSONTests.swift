import KVM
import Testing
import TestSupport
@testable import RealmVMM
@testable import realm_run

/// `measure --json` for fixed inputs, byte for byte.
@Suite struct MeasureJSONTests {
  /// A 64-bit arm64 Image of `count` bytes (header: image_size 1 MiB, 4 KiB pages, LE) in `scratch`.
  static func kernel(in scratch: ScratchDirectory, count: Int = 9000) -> String {
    var image = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    image.replaceSubrange(0..<64, with: [UInt8](repeating: 0, count: 64))
    image[18] = 0x10  // image_size 0x100000
    image[24] = 0b1010  // flags: LE, 4 KiB pages
    image.replaceSubrange(56..<60, with: [0x41, 0x52, 0x4D, 0x64])  // "ARM\x64"
    return scratch.file("Image", image)
  }

  static func json(_ config: MachineConfig, _ series: String?) throws -> String {
    let profile = RealmHostProfile.defaults(for: series.flatMap(CCASeries.init(name:)))
    return try RIMPrediction(config: config, profile: profile, algorithmOverride: nil).json
  }

  /// The JSON before the logic moved into RealmVMM, for the configurations of ``pinned()``.
  static let expected: [String: String] = [
    "plain-v13": #"{"algorithm":"sha256","rules":"rmm-2.0","rim":"a268650e16a28a5a407033e63d90b5e7d19edbccfd4ca8a2f8bce8ebb9218672","realm_params":{"flags":1,"lpa2":true,"sve":false,"pmu":false,"s2sz":33,"sve_vl":0,"num_bps":5,"num_wps":3,"pmu_num_ctrs":0,"hash_algo":0},"rec":{"pc":"0x80000000","x0":"0x83e00000"},"measured":{"data_granules":19,"ripas_entries":0,"recs":1}}"#,
    "plain-v12": #"{"algorithm":"sha256","rules":"rmm-1.0","rim":"49bd4d90139a59c5b20168cb5f42af14471592b63de0b3ac466b99158a4ee5be","realm_params":{"flags":0,"lpa2":false,"sve":false,"pmu":false,"s2sz":33,"sve_vl":0,"num_bps":5,"num_wps":3,"pmu_num_ctrs":0,"hash_algo":0},"rec":{"pc":"0x80000000","x0":"0x83e00000"},"measured":{"data_granules":19,"ripas_entries":1035,"recs":1}}"#,
    "full-v13": #"{"algorithm":"sha512","rules":"rmm-2.0","rim":"281aa71ce5181d879fd1e0d233cd16b3d95271b387781f721c856b0613949947192374a62e05f4c1cd7bd2312ea7ae7bb1005caae238399ec38e496ccb426bb9","realm_params":{"flags":7,"lpa2":true,"sve":true,"pmu":true,"s2sz":33,"sve_vl":3,"num_bps":5,"num_wps":3,"pmu_num_ctrs":6,"hash_algo":1},"rec":{"pc":"0x80000000","x0":"0x87e00000"},"measured":{"data_granules":21,"ripas_entries":0,"recs":1}}"#,
    "full-v12": #"{"algorithm":"sha512","rules":"rmm-1.0","rim":"1f360805d30ec0a2602feb1396d6b076b1c6ca15f642cd34c2ac197ccb07e56b805de08c21dc8646fb5adc3b6a01a60cc3d8ea0e47c42085748ab7dd4266c25e","realm_params":{"flags":6,"lpa2":false,"sve":true,"pmu":true,"s2sz":33,"sve_vl":3,"num_bps":5,"num_wps":3,"pmu_num_ctrs":6,"hash_algo":1},"rec":{"pc":"0x80000000","x0":"0x87e00000"},"measured":{"data_granules":21,"ripas_entries":1576,"recs":1}}"#,
    "full-v5": #"{"algorithm":"sha512","rules":"rmm-1.0","rim":"b02cd60070284a1912fd3041962d38d9e487913d634f118c3eb3f6a7555cecf1f3d595df32e25aec78c841c26934f45fceb31d039e4859e74e67c557d26338e3","realm_params":{"flags":6,"lpa2":false,"sve":true,"pmu":true,"s2sz":33,"sve_vl":3,"num_bps":5,"num_wps":3,"pmu_num_ctrs":6,"hash_algo":1},"rec":{"pc":"0x80000000","x0":"0x87e00000"},"measured":{"data_granules":21,"ripas_entries":64,"recs":1}}"#,
  ]

  @Test func pinned() throws {
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
      let json = try Self.json(config, series)
      #expect(json == Self.expected[name], "\(name)")
    }
  }
}
