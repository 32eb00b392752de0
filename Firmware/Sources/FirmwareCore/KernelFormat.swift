/// What a kernel file holds, told from its first bytes: a plain arm64 `Image`, a gzip file
/// (e.g. Ubuntu's vmlinuz) or an EFI zboot image (a small PE/COFF decompressor with the
/// compressed `Image` as its payload).
public enum KernelFormat: Equatable {
  /// An arm64 `Image` (possibly also a PE/COFF EFI stub), loaded as is: anything that is neither
  /// gzip nor zboot, for `ArmImageHeader` to check.
  case image
  /// A gzip file whose data is an `Image`.
  case gzip
  /// An EFI zboot image whose payload (`offset`, `size` bytes into the file) is a gzip member.
  case zbootGzip(offset: Int, size: Int)
  /// An EFI zboot image whose payload is a zstd frame (Linux appends the le32 uncompressed size
  /// right after it, outside `size`).
  case zbootZstd(offset: Int, size: Int)

  /// Bytes `detect` looks at.
  public static let headerSize = 64

  /// The zboot header, from Linux drivers/firmware/efi/libstub/zboot-header.S:
  ///   0: .long MZ_MAGIC ("MZ\0\0")          4: .ascii "zimg"
  ///   8: .long payload offset (from the start of the file)
  ///  12: .long payload size (gzip: the whole member; others: without the le32 size Linux
  ///      appends, Makefile.zboot's ZBOOT_SIZE_LEN)
  ///  16: .long 0, 0 (reserved)              24: .asciz compression type (Makefile.zboot: "gzip",
  ///      "lz4", "lzma", "lzo", "xzkern", "zstd22")
  /// 0x38: the PE header offset at 0x3c, as in any PE file.
  static let zbootMagic: [UInt8] = Array("zimg".utf8)

  /// Identifies the file from its first bytes (`head`, at least `headerSize` of them when the
  /// file is that long) and its size; zboot payload bounds are checked against `fileSize`.
  public static func detect<Bytes: RandomAccessCollection>(_ head: Bytes, fileSize: UInt64) throws(KernelFormatError) -> KernelFormat
  where Bytes.Element == UInt8, Bytes.Index == Int {
    func matches(_ bytes: [UInt8], at offset: Int) -> Bool {
      for (i, b) in bytes.enumerated() where head.byte(at: offset + i) != b { return false }
      return true
    }
    if matches(Gzip.magic, at: 0) { return .gzip }
    if matches(Array("MZ".utf8), at: 0) && matches(zbootMagic, at: 4) {
      guard let offset = head.le32(at: 8), let size = head.le32(at: 12) else { throw .truncated }
      guard size > 0, UInt64(offset) >= 64, UInt64(offset) + UInt64(size) <= fileSize else {
        throw .payloadOutOfBounds(offset: UInt64(offset), size: UInt64(size), fileSize: fileSize)
      }
      var type: [UInt8] = []
      for i in 24..<Swift.min(56, head.count) {  // NUL-terminated, before the PE offset at 0x38
        guard let b = head.byte(at: i), b != 0 else { break }
        type.append(b)
      }
      if type == Array("gzip".utf8) { return .zbootGzip(offset: Int(offset), size: Int(size)) }
      if type == Array("zstd22".utf8) || type == Array("zstd".utf8) { return .zbootZstd(offset: Int(offset), size: Int(size)) }
      throw .unsupportedCompression(type)
    }
    return .image
  }
}

/// Why a kernel file cannot be unpacked.
public enum KernelFormatError: Error, Equatable {
  /// The file ends inside the zboot header.
  case truncated
  /// The zboot payload does not lie inside the file.
  case payloadOutOfBounds(offset: UInt64, size: UInt64, fileSize: UInt64)
  /// A zboot compression type the firmware cannot decompress (e.g. "lzma").
  case unsupportedCompression([UInt8])
}
