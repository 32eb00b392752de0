import Platform

/// 9P2000.L's wire format: little-endian integers, strings as a 16-bit length and bytes, and the
/// 13-byte qid. Every message starts with size[4] type[1] tag[2].
public enum NinePWire {
  /// size[4] type[1] tag[2].
  public static let headerSize = 7
  /// The tag of a message outside any request (Tversion's).
  public static let noTag: UInt16 = 0xFFFF
  /// The fid that names no file (Tattach's afid without authentication).
  public static let noFid: UInt32 = 0xFFFF_FFFF
  /// Rread's and Rreaddir's bytes before their data: the header and count[4].
  public static let readOverhead = headerSize + 4
  /// The most names one Twalk may carry (the protocol's MAXWELEM).
  public static let maxWalkNames = 16
}

/// Why a message could not be decoded. A malformed request is answered with Rlerror(EPROTO), never
/// a crash: its bytes come from the guest.
public enum NinePDecodeError: Error, Equatable, Sendable {
  /// The message is shorter than its header, or its fields run past its end.
  case truncated
  /// The size field disagrees with the bytes the request holds.
  case sizeMismatch(stated: UInt32, actual: Int)
  /// A type this server does not implement (or an R-message sent as a request).
  case unknownType(UInt8)
  /// Bytes left after the last field.
  case trailingBytes(Int)
  /// Twalk with more than ``NinePWire/maxWalkNames`` names.
  case tooManyNames(Int)
}

/// Reads a message's fields in order, each bounds-checked against the message.
struct NinePReader {
  private let bytes: ArraySlice<UInt8>
  private(set) var position: Int

  init(_ bytes: ArraySlice<UInt8>) {
    self.bytes = bytes
    position = bytes.startIndex
  }

  var remaining: Int { bytes.endIndex - position }

  mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type = T.self) throws(NinePDecodeError) -> T {
    let width = MemoryLayout<T>.size
    guard remaining >= width else { throw .truncated }
    var value: T = 0
    for index in 0..<width { value |= T(bytes[position + index]) << (8 * index) }
    position += width
    return value
  }

  mutating func u8() throws(NinePDecodeError) -> UInt8 { try integer() }
  mutating func u16() throws(NinePDecodeError) -> UInt16 { try integer() }
  mutating func u32() throws(NinePDecodeError) -> UInt32 { try integer() }
  mutating func u64() throws(NinePDecodeError) -> UInt64 { try integer() }

  /// `count` bytes, in place.
  mutating func bytes(_ count: Int) throws(NinePDecodeError) -> ArraySlice<UInt8> {
    guard count >= 0, remaining >= count else { throw .truncated }
    defer { position += count }
    return bytes[position..<(position + count)]
  }

  /// A string: len[2] then its bytes (a file name's bytes need not be UTF-8).
  mutating func string() throws(NinePDecodeError) -> [UInt8] {
    Array(try bytes(Int(try u16())))
  }

  func finish() throws(NinePDecodeError) {
    guard remaining == 0 else { throw .trailingBytes(remaining) }
  }
}

/// A file's identity on the wire: its type (directory, symlink, file), version and a number unique
/// within the share.
public struct NinePQid: Equatable, Sendable {
  public static let directory: UInt8 = 0x80
  public static let symlink: UInt8 = 0x02
  public static let file: UInt8 = 0x00

  public var type: UInt8
  public var version: UInt32
  public var path: UInt64

  public init(type: UInt8, version: UInt32 = 0, path: UInt64) {
    self.type = type
    self.version = version
    self.path = path
  }

  public static let size = 13
}

/// Builds a reply: the header's size is filled in by ``finish()``.
struct NinePWriter {
  private(set) var bytes: [UInt8]

  init(type: UInt8, tag: UInt16, capacity: Int = 64) {
    bytes = []
    bytes.reserveCapacity(capacity)
    u32(0)
    u8(type)
    u16(tag)
  }

  var count: Int { bytes.count }

  mutating func integer<T: FixedWidthInteger>(_ value: T) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
  }

  mutating func u8(_ value: UInt8) { bytes.append(value) }
  mutating func u16(_ value: UInt16) { integer(value) }
  mutating func u32(_ value: UInt32) { integer(value) }
  mutating func u64(_ value: UInt64) { integer(value) }

  mutating func string(_ value: some Collection<UInt8>) {
    u16(UInt16(value.count))
    bytes.append(contentsOf: value)
  }

  mutating func qid(_ qid: NinePQid) {
    u8(qid.type)
    u32(qid.version)
    u64(qid.path)
  }

  mutating func append(_ data: some Collection<UInt8>) {
    bytes.append(contentsOf: data)
  }

  /// Appends `count` bytes that `body` fills; keeps only the first bytes it reports filled.
  mutating func append(upTo count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(Errno) -> Int)
    throws(Errno)
  {
    let start = bytes.count
    // An Array, not repeatElement: the standard library appends a Repeated element by element
    // through unspecialised generic code (65 ms per 128 KiB read, measured).
    bytes += [UInt8](repeating: 0, count: count)
    var filled = 0
    do throws(Errno) {
      filled = try bytes.withMutableBytes { buffer throws(Errno) in
        try body(UnsafeMutableRawBufferPointer(rebasing: buffer[start..<(start + count)]))
      }
    } catch {
      bytes.removeLast(count)
      throw error
    }
    bytes.removeLast(count - max(0, min(filled, count)))
  }

  /// Overwrites a u32 written earlier at byte `offset` (a count known only after its data).
  mutating func patch(u32 value: UInt32, at offset: Int) {
    for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
  }

  /// The message, its size field set.
  mutating func finish() -> [UInt8] {
    patch(u32: UInt32(bytes.count), at: 0)
    return bytes
  }
}
