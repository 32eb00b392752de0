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
  /// With `limit` (a compressed kernel file's buffer, see `compressedKernelBuffer`) everything
  /// ends at or below it.
  public init(memory: [MemoryRange], firmwareEnd: UInt64, kernel header: ArmImageHeader, initrdSize: UInt64,
              deviceTreeCapacity: UInt64, below limit: UInt64? = nil) throws(BootLayoutError)
  {
    guard var ram = Self.firmwareRAM(memory, firmwareEnd) else { throw .noRAMAfterFirmware }
    if let limit, limit < ram.end {
      guard limit >= firmwareEnd else { throw .doesNotFit(needed: header.imageSize, available: 0) }
      ram = MemoryRange(base: ram.base, size: limit - ram.base)
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

  /// Where to read a compressed kernel file of `size` bytes before unpacking it: the top of the RAM
  /// range holding the firmware, page-aligned, so that the kernel, initrd and DTB go below it
  /// (`BootLayout(..., below:)`) and unpacking never overwrites its own input. The firmware's heap
  /// is too small for a kernel, and nothing else uses that RAM once the DTB has been copied.
  public static func compressedKernelBuffer(memory: [MemoryRange], firmwareEnd: UInt64, size: UInt64) throws(BootLayoutError)
    -> UInt64
  {
    guard let ram = firmwareRAM(memory, firmwareEnd) else { throw .noRAMAfterFirmware }
    let available = ram.end - firmwareEnd
    guard size <= available else { throw .doesNotFit(needed: size, available: available) }
    let base = (ram.end - size) & ~0xFFF
    guard base >= firmwareEnd else { throw .doesNotFit(needed: size, available: available) }
    return base
  }

  /// The RAM range that holds the firmware (everything is placed above the firmware in it).
  static func firmwareRAM(_ memory: [MemoryRange], _ firmwareEnd: UInt64) -> MemoryRange? {
    memory.first(where: { $0.base < firmwareEnd && firmwareEnd <= $0.end })
  }
}
