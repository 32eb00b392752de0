/// Why a kernel image was rejected.
public enum KernelImageError: Error, Equatable {
  case tooSmall
  case badMagic
  case bigEndian
  case badSize
}

/// The 64-byte header of an arm64 Linux `Image` (Documentation/arch/arm64/booting.rst).
public struct ArmImageHeader: Equatable {
  public static let magic: UInt32 = 0x644D_5241  // "ARM\x64"
  /// Offset from a 2 MiB-aligned base at which the image must be placed.
  public var textOffset: UInt64
  /// Effective size of the image in memory, including BSS.
  public var imageSize: UInt64
  public var flags: UInt64

  /// Parses and checks the header at the start of `bytes` for a file of `fileSize` bytes.
  public init(bytes: [UInt8], fileSize: UInt64) throws(KernelImageError) {
    guard bytes.count >= 64, let text = bytes.le64(at: 8), let size = bytes.le64(at: 16), let flags = bytes.le64(at: 24),
          let magic = bytes.le32(at: 56) else { throw .tooSmall }
    guard magic == ArmImageHeader.magic else { throw .badMagic }
    guard flags & 1 == 0 else { throw .bigEndian }
    // image_size 0 means a pre-3.17 kernel: text_offset 0x80000 and an unknown size.
    let effective = size == 0 ? fileSize : size
    guard effective >= fileSize, effective <= 1 << 32, text <= 1 << 30, text % 4096 == 0 else { throw .badSize }
    textOffset = size == 0 ? 0x80000 : text
    imageSize = effective
    self.flags = flags
  }

  /// Where to place the image: the lowest 2 MiB-aligned base ≥ `lowest`, plus text_offset.
  public func loadAddress(atOrAbove lowest: UInt64) -> UInt64? {
    let (aligned, o) = lowest.addingReportingOverflow(0x1F_FFFF)
    guard !o else { return nil }
    let (addr, o2) = (aligned & ~0x1F_FFFF).addingReportingOverflow(textOffset)
    return o2 ? nil : addr
  }
}
