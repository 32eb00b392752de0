/// A gzip (RFC 1952) member: header (FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT), DEFLATE data,
/// then the CRC-32 and ISIZE of the uncompressed data, both checked. Bytes after the member
/// (padding, further members) are ignored, as the kernel's own decompressor does.
public enum Gzip {
  /// ID1, ID2 and CM (8, deflate): the first three bytes of every member.
  public static let magic: [UInt8] = [0x1F, 0x8B, 0x08]
  /// Smallest member: 10-byte header, an empty final block (2 bytes), 8-byte trailer.
  public static let minimumSize = 20

  /// Decompresses the gzip member at the start of `input` into `output`; returns the bytes written.
  public static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
    throws(DecompressionError) -> Int
  {
    let start = try dataOffset(input)
    let consumed: Int
    let produced: Int
    do throws(DecompressionError) {
      (consumed, produced) = try Inflate.decompress(UnsafeRawBufferPointer(rebasing: input[start...]), into: output)
    } catch { throw error.shifted(by: start) }
    let trailer = start + consumed
    guard let storedCRC = input.le32(at: trailer), let storedSize = input.le32(at: trailer + 4) else { throw .truncated }
    let crc = CRC32.checksum(UnsafeRawBufferPointer(rebasing: output[..<produced]))
    guard crc == storedCRC else { throw .checksumMismatch(expected: storedCRC, computed: crc) }
    guard UInt32(truncatingIfNeeded: produced) == storedSize else {
      throw .lengthMismatch(expected: UInt64(storedSize), produced: UInt64(produced))
    }
    return produced
  }

  /// Decompresses only the first `output.count` bytes (e.g. to read the kernel header inside);
  /// nothing is checked past them. Returns the bytes written (fewer when the data is shorter).
  public static func decompressPrefix(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
    throws(DecompressionError) -> Int
  {
    let start = try dataOffset(input)
    do throws(DecompressionError) {
      return try Inflate.decompress(UnsafeRawBufferPointer(rebasing: input[start...]), into: output, stopWhenFull: true).produced
    } catch { throw error.shifted(by: start) }
  }

  /// The uncompressed size recorded in the last four bytes (ISIZE, mod 2^32) of a single-member
  /// file, or nil when `input` is not gzip. A hint only: `decompress` checks it.
  public static func uncompressedSizeHint(_ input: UnsafeRawBufferPointer) -> UInt32? {
    guard input.count >= minimumSize, input[0] == magic[0], input[1] == magic[1], input[2] == magic[2] else { return nil }
    return input.le32(at: input.count - 4)
  }

  /// Checks the member header and returns the offset of its DEFLATE data.
  static func dataOffset(_ input: UnsafeRawBufferPointer) throws(DecompressionError) -> Int {
    guard input.count >= 10 else { throw .truncated }
    for i in 0..<3 where input[i] != magic[i] { throw .corrupt(offset: i) }
    let flags = input[3]
    guard flags & 0xE0 == 0 else { throw .corrupt(offset: 3) }  // reserved flag bits
    var offset = 10
    if flags & 0x04 != 0 {  // FEXTRA: XLEN, then XLEN bytes
      guard let extra = input.le16(at: offset) else { throw .truncated }
      offset += 2 + Int(extra)
    }
    for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: NUL-terminated
      while true {
        guard let b = input.byte(at: offset) else { throw .truncated }
        offset += 1
        if b == 0 { break }
      }
    }
    if flags & 0x02 != 0 {  // FHCRC: low 16 bits of the CRC-32 of the header so far
      guard let stored = input.le16(at: offset) else { throw .truncated }
      let crc = CRC32.checksum(UnsafeRawBufferPointer(rebasing: input[..<offset]))
      guard UInt16(truncatingIfNeeded: crc) == stored else {
        throw .checksumMismatch(expected: UInt32(stored), computed: crc & 0xFFFF)
      }
      offset += 2
    }
    guard offset < input.count else { throw .truncated }
    return offset
  }
}
