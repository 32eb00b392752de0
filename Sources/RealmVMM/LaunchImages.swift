/// Everything that goes into guest RAM before the first instruction, worked out from the
/// configuration alone: the boot image, the initrd, the DTB, and where each goes.
///
/// The machine copies these into RAM; for a Realm they are what the RMM measures, in this order,
/// so `realm-run measure` builds the same value to predict the measurement.
public struct LaunchImages: Sendable {
  /// One range of guest RAM with initial contents.
  public struct Region: Sendable, Equatable {
    /// Guest address of the first byte (4 KiB aligned).
    public var address: UInt64
    /// The contents, zero-padded to whole 4 KiB granules.
    public var bytes: [UInt8]
  }

  public let layout: BootLayout
  /// The DTB as the guest receives it, padded to its 64 KiB slot.
  public let deviceTree: [UInt8]
  /// The populated regions in ascending address order: image, initrd, DTB.
  public let regions: [Region]

  public static let granule: UInt64 = 4096

  public init(config: MachineConfig) throws(VMMError) {
    let boot = try BootImages(config: config)
    layout = boot.layout
    do {
      deviceTree = try MachineDeviceTree.build(.init(
        cpus: config.cpus, ramBase: MemoryMap.ramBase, ramSize: config.memorySize,
        bootArguments: boot.bootArguments, initrd: boot.layout.initrd,
        psciMethod: config.realm ? "smc" : "hvc", console: config.console, bootEntry: config.bootEntry, pmu: config.pmu))
    } catch {
      throw .deviceTree(error)
    }
    var regions = [Self.region(boot.image, at: boot.layout.imageAddress)]
    if let initrd = boot.initrd, let range = boot.layout.initrd {
      regions.append(Self.region(initrd, at: range.lowerBound))
    }
    regions.append(Self.region(deviceTree, at: boot.layout.deviceTreeAddress))
    self.regions = regions.sorted { $0.address < $1.address }
    for (first, second) in zip(self.regions, self.regions.dropFirst())
    where first.address + UInt64(first.bytes.count) > second.address {
      throw .placement(.overlap("images at 0x\(String(first.address, radix: 16)) and 0x\(String(second.address, radix: 16)) overlap"))
    }
  }

  /// `bytes` placed at `address` rounded down to a granule, padded to whole granules (a Realm
  /// populates whole 4 KiB granules; kvmtool aligns each region the same way).
  static func region(_ bytes: [UInt8], at address: UInt64) -> Region {
    let start = alignDown(address, granule)
    var padded = [UInt8](repeating: 0, count: Int(address - start))
    padded += bytes
    padded += [UInt8](repeating: 0, count: Int(alignUp(UInt64(padded.count), granule)) - padded.count)
    return Region(address: start, bytes: padded)
  }
}
