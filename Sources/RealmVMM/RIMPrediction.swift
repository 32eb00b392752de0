import DeviceTree
import FirmwareCore
import GuestMemory
import KVM
import RealmMeasurement

/// The Realm Initial Measurement a machine configuration gets on a host (`realm-run measure`,
/// `run --print-rim`): the same images, DTB, populate order and REC registers the machine would
/// give the RMM, measured with the host's rules and realm parameters.
public struct RIMPrediction: Sendable {
  /// The predicted RIM.
  public let rim: RealmInitialMeasurement
  /// What was measured: the realm parameters, RAM, populated regions and boot REC.
  public let launch: RealmLaunch
  /// The host it was predicted for.
  public let profile: RealmHostProfile
  /// How many of each measured RMM command the host issues.
  public let counts: (data: Int, ripas: Int, rec: Int)
  /// The DTB the machine loads (what the firmware measures into REM0).
  public let deviceTree: [UInt8]
  /// What each populated region is ("KERNEL", "INITRD", "DTB"...), in the launch's order.
  let regionNames: [String]

  /// Predicts the RIM of `config` (a Realm) on a host described by `profile`.
  /// - Parameter algorithmOverride: the algorithm the host really uses, if not the configured one.
  public init(config: MachineConfig, profile: RealmHostProfile, algorithmOverride: RealmHashAlgorithm?)
    throws(RIMPredictionError)
  {
    let images: LaunchImages
    do { images = try LaunchImages(config: config) } catch { throw .images(error) }
    deviceTree = images.deviceTree
    regionNames = images.regions.map(\.name)
    let ramEnd = MemoryMap.ramBase + config.memorySize
    let bits = IPALayout.minimumBits(reaching: ramEnd, realm: true)
    // realm_create_rd(): with SVE the kernel sets the flag and sve_vl = VQ - 1 (vector length / 128 - 1).
    let parameters = RealmParameters(
      ipaBits: UInt8(bits), hashAlgorithm: algorithmOverride ?? config.realmOptions.algorithm, lpa2: profile.lpa2,
      breakpoints: profile.breakpoints, watchpoints: profile.watchpoints,
      sve: config.sveVectorLength != nil, sveVectorLength: UInt8((config.sveVectorLength ?? 128) / 128 - 1),
      pmu: config.pmu, pmuCounters: UInt8(config.pmuCounters ?? 0))
    do {
      launch = RealmLaunch(
        parameters: parameters, ram: MemoryMap.ramBase..<ramEnd,
        regions: images.regions.map {
          RealmLaunch.Region(address: $0.address, size: Int($0.size), contentOffset: $0.contentOffset, contents: $0.contents)
        },
        bootCPU: try RECParameters(pc: images.layout.entry, gprs: [images.layout.deviceTreeAddress]))
      // One pass: each granule is read from the mapped file, hashed and dropped.
      var rim = RealmInitialMeasurement(parameters: parameters)
      var counts = (data: 0, ripas: 0, rec: 0)
      try launch.forEachOperation(rules: profile.rules, ripasOrder: profile.ripasOrder) { (operation) throws(RIMError) in
        try rim.extend(operation)
        switch operation {
        case .data: counts.data += 1
        case .ripas: counts.ripas += 1
        case .rec: counts.rec += 1
        }
      }
      self.rim = rim
      self.counts = counts
    } catch {
      throw .measurement(error)
    }
    self.profile = profile
  }

  /// The RIM `config` gets on this host (`run --print-rim`): the profile read from the host
  /// (``RealmHostProfile/probeHost(series:)``; its series, or `hostSeries` if given, picks the
  /// rules from its row), else the defaults for that series; and the algorithm the host's kernel
  /// really asks for.
  public init(config: MachineConfig, hostSeries: CCASeries?) throws(RIMPredictionError) {
    let profile = (try? RealmHostProfile.probeHost(series: hostSeries)) ?? RealmHostProfile.defaults(for: hostSeries)
    try self.init(config: config, profile: profile, algorithmOverride: profile.fixedAlgorithm)
  }

  /// The launch measurement log of this launch on this host (`--measurement-log`): every measured
  /// command in the host's order, each image with its digest (hashed again, from the mapped files).
  public func launchLog() throws(RIMPredictionError) -> RealmLaunchLog {
    do {
      return try RealmLaunchLog(
        launch: launch, names: regionNames, rules: profile.rules, ripasOrder: profile.ripasOrder,
        deviceTree: Array(deviceTree.prefix(DeviceTreeReader.totalSize(of: deviceTree))))
    } catch {
      throw .measurement(error)
    }
  }

  /// `realm-run measure --json`: the algorithm, rules and RIM, the measured realm parameters, the
  /// boot REC's registers and how many of each measured command there were, on one line.
  public var json: String { json(appending: "") }

  /// ``json`` with `fields` (`"name":value` pairs, comma-separated) appended to the object.
  public func json(appending fields: String) -> String {
    let p = launch.parameters
    func hex(_ value: UInt64) -> String { "\"0x" + String(value, radix: 16) + "\"" }
    return """
      {"algorithm":"\(rim.algorithm.rawValue)","rules":"\(profile.rules.rawValue)","rim":"\(rim.hex)",\
      "realm_params":{"flags":\(p.flags),"lpa2":\(p.lpa2),"sve":\(p.sve),"pmu":\(p.pmu),"s2sz":\(p.ipaBits),\
      "sve_vl":\(p.sveVectorLength),"num_bps":\(p.breakpoints),"num_wps":\(p.watchpoints),\
      "pmu_num_ctrs":\(p.pmuCounters),"hash_algo":\(p.hashAlgorithm.rmiValue)},\
      "rec":{"pc":\(hex(launch.bootCPU.pc)),"x0":\(hex(launch.bootCPU.gprs[0]))},\
      "measured":{"data_granules":\(counts.data),"ripas_entries":\(counts.ripas),"recs":\(counts.rec)}\
      \(fields.isEmpty ? "" : "," + fields)}
      """
  }
}

/// Why a RIM could not be predicted.
public enum RIMPredictionError: Error, CustomStringConvertible {
  /// The boot files could not be read or placed, or the DTB not built.
  case images(VMMError)
  /// The launch breaks a rule of the measurement model (alignment, overlap, RAM, registers).
  case measurement(RIMError)

  /// The error underneath: its message is this error's.
  public var cause: any Error & CustomStringConvertible {
    switch self {
    case .images(let error): return error
    case .measurement(let error): return error
    }
  }

  public var description: String { cause.description }
}
