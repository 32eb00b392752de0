import FirmwareCore

/// Where the boot images and the DTB go in guest RAM, as kvmtool places them (arm/kvm.c), so that
/// what it measures for a Realm is what `realm-run measure` predicts.
public struct BootLayout: Equatable, Sendable {
  /// Guest address of the first instruction (vCPU 0's PC).
  public var entry: UInt64
  /// Where the kernel or firmware file is copied.
  public var imageAddress: UInt64
  /// Bytes the image occupies in memory (kernel BSS included).
  public var imageMemorySize: UInt64
  /// The initrd's guest range, if there is one.
  public var initrd: Range<UInt64>?
  /// Guest address of the DTB (x0 at entry).
  public var deviceTreeAddress: UInt64

  /// The DTB's size in guest memory: kvmtool's FDT_MAX_SIZE, populated (and measured) whole.
  public static let deviceTreeSize: UInt64 = 0x1_0000
  static let deviceTreeAlignment: UInt64 = 2 << 20
  /// Linux wants the DTB and initrd in the first 256 MiB of RAM ("lowmem").
  static let lowMemoryLimit: UInt64 = 256 << 20

  /// Why the images do not fit.
  public enum PlacementError: Error, Equatable, CustomStringConvertible {
    case imageTooLarge(name: String, size: UInt64, available: UInt64)
    case overlap(String)

    public var description: String {
      switch self {
      case .imageTooLarge(let name, let size, let available):
        return "\(name) needs \(size >> 20) MiB but only \(available >> 20) MiB of guest RAM is free for it; raise --mem"
      case .overlap(let what):
        return "\(what); raise --mem"
      }
    }
  }

  /// Places a Linux kernel: at RAM base + text_offset, the DTB 2 MiB-aligned near the top of low
  /// memory, the initrd just below the DTB (page aligned, so no two images share a Realm granule).
  public static func kernel(header: ArmImageHeader, initrdSize: UInt64?, ramBase: UInt64, ramSize: UInt64) throws(PlacementError) -> BootLayout {
    let imageAddress = ramBase + header.textOffset
    let imageEnd = imageAddress + header.imageSize
    guard imageEnd <= ramBase + ramSize else {
      throw .imageTooLarge(name: "the kernel", size: header.imageSize + header.textOffset, available: ramSize)
    }
    let limit = ramBase + min(ramSize, lowMemoryLimit)
    let deviceTree = try deviceTreeAddress(below: limit, ramBase: ramBase)
    guard deviceTree >= alignUp(imageEnd, 4096) else {
      throw .overlap("the DTB at 0x\(String(deviceTree, radix: 16)) overlaps the kernel (it ends at 0x\(String(imageEnd, radix: 16)))")
    }
    var initrd: Range<UInt64>?
    if let initrdSize {
      let space = deviceTree - alignUp(imageEnd, 4096)
      guard initrdSize <= space else {
        throw .imageTooLarge(name: "the initrd", size: initrdSize, available: space)
      }
      let start = alignDown(deviceTree - initrdSize, 4096)
      guard start >= alignUp(imageEnd, 4096) else {
        throw .overlap("the initrd overlaps the kernel")
      }
      initrd = start..<start + initrdSize
    }
    return BootLayout(
      entry: imageAddress, imageAddress: imageAddress, imageMemorySize: header.imageSize,
      initrd: initrd, deviceTreeAddress: deviceTree)
  }

  /// Places firmware at the RAM base and the DTB 2 MiB-aligned at the end of RAM (kvmtool's
  /// "Load FDT at the end of DRAM with firmware"), leaving the rest of RAM to the firmware.
  /// Firmware with an arm64 Image header (like realm-run's own) is placed as the header asks: at
  /// RAM base + text_offset, with image_size bytes of memory (its BSS, stack and heap).
  public static func firmware(size: UInt64, header: ArmImageHeader? = nil, ramBase: UInt64, ramSize: UInt64) throws(PlacementError) -> BootLayout {
    let deviceTree = try deviceTreeAddress(below: ramBase + ramSize, ramBase: ramBase)
    let address = ramBase + (header?.textOffset ?? 0)
    let memorySize = max(header?.imageSize ?? 0, size)
    guard address + alignUp(memorySize, 4096) <= deviceTree else {
      throw .imageTooLarge(name: "the firmware", size: memorySize + (address - ramBase), available: deviceTree - ramBase)
    }
    return BootLayout(
      entry: address, imageAddress: address, imageMemorySize: memorySize, initrd: nil,
      deviceTreeAddress: deviceTree)
  }

  private static func deviceTreeAddress(below limit: UInt64, ramBase: UInt64) throws(PlacementError) -> UInt64 {
    guard limit - ramBase >= deviceTreeSize + deviceTreeAlignment else {
      throw .imageTooLarge(name: "the DTB", size: deviceTreeSize + deviceTreeAlignment, available: limit - ramBase)
    }
    // kvmtool: ALIGN(limit - (FDT_MAX_SIZE + FDT_ALIGN), FDT_ALIGN), rounding up.
    return alignUp(limit - (deviceTreeSize + deviceTreeAlignment), deviceTreeAlignment)
  }
}

func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
  (value + alignment - 1) & ~(alignment - 1)
}

func alignDown(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
  value & ~(alignment - 1)
}
