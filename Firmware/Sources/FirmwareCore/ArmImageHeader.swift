/// Why a file is not a bootable arm64 Linux `Image`.
public enum KernelImageError: Error, Equatable {
  /// Fewer bytes than the 64-byte header.
  case tooSmall(fileSize: UInt64)
  /// No "ARM\x64" at offset 56.
  case badMagic
  /// Flags bit 0: a big-endian kernel.
  case bigEndian
  /// `image_size` is smaller than the file itself.
  case imageSizeTooSmall(imageSize: UInt64, fileSize: UInt64)
  /// `text_offset` is not page-aligned or beyond 1 GiB, or `image_size` beyond 4 GiB.
  case implausibleLayout(textOffset: UInt64, imageSize: UInt64)
}

/// The 64-byte header of an arm64 Linux `Image` (Documentation/arch/arm64/booting.rst): the
/// one parser of it, used by the firmware before it loads a kernel, by `realm-run --kernel` and by
/// `image create`.
public struct ArmImageHeader: Equatable, Sendable {
  public static let magic: UInt32 = 0x644D_5241  // "ARM\x64"
  /// Bytes of the header.
  public static let size = 64
  /// Offset from a 2 MiB-aligned base at which the image must be placed.
  public var textOffset: UInt64
  /// Bytes the loaded image occupies, BSS included (the file size for kernels older than 3.17).
  public var imageSize: UInt64
  /// Flags: bit 0 big-endian, bits 1-2 page size, bit 3 placement anywhere in RAM.
  public var flags: UInt64

  /// Parses and checks the header at the start of `bytes` (at least its first 64 bytes) of a file
  /// of `fileSize` bytes.
  public init<Bytes: RandomAccessCollection>(bytes: Bytes, fileSize: UInt64) throws(KernelImageError)
  where Bytes.Element == UInt8, Bytes.Index == Int {
    guard bytes.count >= Self.size, let text = bytes.le64(at: 8), let size = bytes.le64(at: 16),
          let flags = bytes.le64(at: 24), let magic = bytes.le32(at: 56) else {
      throw .tooSmall(fileSize: Swift.min(fileSize, UInt64(bytes.count)))
    }
    guard magic == Self.magic else { throw .badMagic }
    guard flags & 1 == 0 else { throw .bigEndian }
    guard size == 0 || size >= fileSize else { throw .imageSizeTooSmall(imageSize: size, fileSize: fileSize) }
    // image_size 0 means a pre-3.17 kernel: text_offset 0x80000 and an unknown size.
    let effective = size == 0 ? fileSize : size
    guard effective <= 1 << 32, text <= 1 << 30, text % 4096 == 0 else {
      throw .implausibleLayout(textOffset: text, imageSize: size)
    }
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
