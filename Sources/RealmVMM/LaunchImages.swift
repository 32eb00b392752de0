import RealmMeasurement

/// Everything that goes into guest RAM before the first instruction, worked out from the
/// configuration alone: the boot image, the initrd, the DTB, and where each goes.
///
/// The machine copies these into RAM; for a Realm they are what the RMM measures, in this order,
/// so `realm-run measure` builds the same value to predict the measurement.
public struct LaunchImages: Sendable {
  /// One range of guest RAM with initial contents.
  public struct Region: Sendable {
    /// Guest address of the first byte (4 KiB aligned).
    public var address: UInt64
    /// The region's size: whole 4 KiB granules, zeros around the contents.
    public var size: UInt64
    /// Where the contents start within the region.
    public var contentOffset: Int
    /// What the region holds at `contentOffset`.
    public var contents: Contents
    /// What it is, as a launch log names it: "KERNEL", "FIRMWARE", "INITRD" or "DTB".
    public var name: String

    /// A boot file, mapped; or bytes built in memory (the DTB).
    public enum Contents: RegionContents {
      case mapped(MappedImage)
      case bytes([UInt8])

      public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        switch self {
        case .mapped(let image): return try body(image.bytes)
        case .bytes(let bytes): return try bytes.withBytes(body)
        }
      }

      public func done(with range: Range<Int>) {
        if case .mapped(let image) = self { image.release(range) }
      }
    }
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
        psciMethod: config.realm ? "smc" : "hvc", console: config.console, bootEntry: config.bootEntry, pmu: config.pmu,
        bootMode: config.bootMode == .automatic ? nil : String(decoding: config.bootMode.name, as: UTF8.self)))
    } catch {
      throw .deviceTree(error)
    }
    let imageName: String
    if case .kernel = config.boot { imageName = "KERNEL" } else { imageName = "FIRMWARE" }
    var regions = [Self.region(.mapped(boot.image), count: boot.image.bytes.count, at: boot.layout.imageAddress, name: imageName)]
    if let initrd = boot.initrd, let range = boot.layout.initrd {
      regions.append(Self.region(.mapped(initrd), count: initrd.bytes.count, at: range.lowerBound, name: "INITRD"))
    }
    regions.append(Self.region(.bytes(deviceTree), count: deviceTree.count, at: boot.layout.deviceTreeAddress, name: "DTB"))
    self.regions = regions.sorted { $0.address < $1.address }
    for (first, second) in zip(self.regions, self.regions.dropFirst()) where first.address + first.size > second.address {
      throw .placement(.overlap("images at 0x\(String(first.address, radix: 16)) and 0x\(String(second.address, radix: 16)) overlap"))
    }
  }

  /// `count` bytes of `contents` placed at `address`, in a region from `address` rounded down to
  /// a granule to the end rounded up (a Realm populates whole 4 KiB granules; kvmtool aligns each
  /// region the same way).
  static func region(_ contents: Region.Contents, count: Int, at address: UInt64, name: String) -> Region {
    let start = alignDown(address, granule)
    return Region(
      address: start, size: alignUp(address + UInt64(count), granule) - start, contentOffset: Int(address - start),
      contents: contents, name: name)
  }
}
