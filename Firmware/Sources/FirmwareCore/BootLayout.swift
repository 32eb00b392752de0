/// Why the kernel, initrd and DTB do not fit in RAM.
public enum BootLayoutError: Error, Equatable {
  case noRAMAfterFirmware
  case doesNotFit(needed: UInt64, available: UInt64)
}

/// Where the firmware puts what it hands to Linux, all inside the RAM range that holds the firmware:
/// the kernel at a 2 MiB-aligned base + text_offset above the firmware, then the initrd
/// (page-aligned), then the DTB (8-byte aligned, inside 2 MiB-aligned space).
public struct BootLayout: Equatable {
  public var kernel: UInt64
  public var kernelEnd: UInt64
  public var initrd: UInt64
  public var initrdSize: UInt64
  public var deviceTree: UInt64
  public var deviceTreeCapacity: UInt64

  /// Plans the layout; `reserved` ranges (e.g. the DMA pool) are avoided by starting after them.
  public init(memory: [MemoryRange], firmwareEnd: UInt64, kernel header: ArmImageHeader, initrdSize: UInt64,
              deviceTreeCapacity: UInt64) throws(BootLayoutError)
  {
    guard let ram = memory.first(where: { $0.base < firmwareEnd && firmwareEnd <= $0.end }) else {
      throw .noRAMAfterFirmware
    }
    guard let k = header.loadAddress(atOrAbove: firmwareEnd) else { throw .noRAMAfterFirmware }
    let mib2: UInt64 = 0x20_0000
    let sizes = [header.imageSize, initrdSize, deviceTreeCapacity]
    guard sizes.allSatisfy({ $0 <= 1 << 40 }) else { throw .doesNotFit(needed: UInt64.max, available: ram.end) }
    let kEnd = k + header.imageSize
    let initrdBase = (kEnd + mib2 - 1) & ~(mib2 - 1)
    let dtbBase = (initrdBase + initrdSize + mib2 - 1) & ~(mib2 - 1)
    let end = dtbBase + deviceTreeCapacity
    guard end <= ram.end else { throw .doesNotFit(needed: end - firmwareEnd, available: ram.end - firmwareEnd) }
    kernel = k
    kernelEnd = kEnd
    initrd = initrdBase
    self.initrdSize = initrdSize
    deviceTree = dtbBase
    self.deviceTreeCapacity = deviceTreeCapacity
  }
}
