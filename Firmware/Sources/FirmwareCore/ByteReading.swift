/// Bounds-checked little- and big-endian reads from bytes: an array, a slice or a raw buffer
/// (offsets count from the start of the collection). Every accessor returns nil instead of
/// trapping when the requested bytes are not all inside. This is realm-run's one byte-order
/// reader: the firmware's parsers, the host's device models and its measurement code all use it.
extension RandomAccessCollection where Element == UInt8, Index == Int {
  /// The byte at `offset`, or nil when out of range.
  @inlinable public func byte(at offset: Int) -> UInt8? {
    offset >= 0 && offset < count ? self[startIndex + offset] : nil
  }

  /// The unsigned integer of `width` bytes (1 to 8) at `offset`, or nil when out of range.
  @inlinable public func unsignedInteger(at offset: Int, width: Int, bigEndian: Bool = false) -> UInt64? {
    guard offset >= 0, width >= 1, width <= 8, width <= count, offset <= count - width else { return nil }
    var value: UInt64 = 0
    for i in 0..<width {
      let b = UInt64(self[startIndex + (bigEndian ? offset + i : offset + width - 1 - i)])
      value = (value << 8) | b
    }
    return value
  }

  /// Little-endian 16-bit value at `offset`.
  @inlinable public func le16(at offset: Int) -> UInt16? { unsignedInteger(at: offset, width: 2).map { UInt16($0) } }
  /// Little-endian 32-bit value at `offset`.
  @inlinable public func le32(at offset: Int) -> UInt32? { unsignedInteger(at: offset, width: 4).map { UInt32($0) } }
  /// Little-endian 64-bit value at `offset`.
  @inlinable public func le64(at offset: Int) -> UInt64? { unsignedInteger(at: offset, width: 8) }
  /// Big-endian 32-bit value at `offset`.
  @inlinable public func be32(at offset: Int) -> UInt32? { unsignedInteger(at: offset, width: 4, bigEndian: true).map { UInt32($0) } }
  /// Big-endian 64-bit value at `offset`.
  @inlinable public func be64(at offset: Int) -> UInt64? { unsignedInteger(at: offset, width: 8, bigEndian: true) }
}

extension Array where Element == UInt8 {
  /// A copy of `length` bytes at `offset`, or nil when out of range.
  @inlinable public func bytes(at offset: Int, length: Int) -> [UInt8]? {
    guard offset >= 0, length >= 0, length <= count, offset <= count - length else { return nil }
    return Array(self[offset..<(offset + length)])
  }

  /// Appends `value` little-endian in `width` bytes.
  @inlinable public mutating func appendLE(_ value: UInt64, width: Int) {
    for i in 0..<width { append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
  }

  /// Appends `value` big-endian in `width` bytes.
  @inlinable public mutating func appendBE(_ value: UInt64, width: Int) {
    for i in 0..<width { append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(width - 1 - i)))) }
  }

  /// Writes `value` little-endian in `width` bytes at `offset` (must be in range).
  @inlinable public mutating func storeLE(_ value: UInt64, at offset: Int, width: Int) {
    for i in 0..<width { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
  }
}

extension FixedWidthInteger {
  /// The value's bytes, least significant first.
  @inlinable public var littleEndianBytes: [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendLE(UInt64(truncatingIfNeeded: self), width: Self.bitWidth / 8)
    return bytes
  }

  /// The value's bytes, most significant first.
  @inlinable public var bigEndianBytes: [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendBE(UInt64(truncatingIfNeeded: self), width: Self.bitWidth / 8)
    return bytes
  }
}

/// Byte-string helpers that avoid `String` comparison (which in Embedded Swift would pull in
/// the Unicode tables).
public enum ByteString {
  /// The UTF-8 bytes of a static string.
  public static func of(_ s: StaticString) -> [UInt8] {
    s.withUTF8Buffer { Array($0) }
  }

  /// UTF-8 as UCS-2 code units (file paths, load options). Characters outside the BMP (which
  /// UCS-2 cannot carry), stray continuation bytes and cut sequences become U+FFFD.
  public static func ucs2(fromUTF8 utf8: [UInt8]) -> [UInt16] {
    var units: [UInt16] = []
    units.reserveCapacity(utf8.count)
    var i = 0
    while i < utf8.count {
      let lead = utf8[i]
      let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
      var scalar = UInt32(lead >= 0xE0 ? lead & 0x0F : lead >= 0xC0 ? lead & 0x1F : lead)
      var k = 1
      while k < length, i + k < utf8.count, utf8[i + k] & 0xC0 == 0x80 {
        scalar = scalar << 6 | UInt32(utf8[i + k] & 0x3F)
        k += 1
      }
      if (length == 1 && lead >= 0x80) || k < length || length == 4 || scalar > 0xFFFF { scalar = 0xFFFD }
      units.append(UInt16(scalar))
      i += k
    }
    return units
  }

  /// ASCII lower-casing.
  public static func lowercased(_ b: [UInt8]) -> [UInt8] {
    b.map { ($0 >= 65 && $0 <= 90) ? $0 + 32 : $0 }
  }

  /// Lexicographic byte comparison: true when `a` orders before `b`.
  public static func less(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    let n = Swift.min(a.count, b.count)
    var i = 0
    while i < n {
      if a[i] != b[i] { return a[i] < b[i] }
      i += 1
    }
    return a.count < b.count
  }

  /// Strips ASCII spaces, tabs, CR and LF at both ends.
  public static func trimmed(_ b: [UInt8]) -> [UInt8] {
    var start = 0
    var end = b.count
    while start < end, isSpace(b[start]) { start += 1 }
    while end > start, isSpace(b[end - 1]) { end -= 1 }
    return Array(b[start..<end])
  }

  /// True for ASCII blanks.
  public static func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 || c == 13 || c == 10 }

  /// True when `b` starts with `prefix`.
  public static func hasPrefix(_ b: [UInt8], _ prefix: [UInt8]) -> Bool {
    b.count >= prefix.count && Array(b[0..<prefix.count]) == prefix
  }

  /// True when `b` ends with `suffix`.
  public static func hasSuffix(_ b: [UInt8], _ suffix: [UInt8]) -> Bool {
    b.count >= suffix.count && Array(b[(b.count - suffix.count)...]) == suffix
  }

  /// A `String` decoded from UTF-8 bytes (invalid sequences repaired).
  public static func string(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

  /// Lower-case hexadecimal digits of `value`, zero-padded to `digits`.
  public static func hex(_ value: UInt64, digits: Int = 1) -> String {
    var out: [UInt8] = []
    var v = value
    repeat {
      out.append(hexDigit(UInt8(v & 0xf)))
      v >>= 4
    } while v != 0
    while out.count < digits { out.append(48) }
    return string(out.reversed())
  }

  /// Lower-case hexadecimal of a byte string, two digits per byte.
  public static func hex(bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    for b in bytes { out.append(hexDigit(b >> 4)); out.append(hexDigit(b & 0xf)) }
    return string(out)
  }

  static func hexDigit(_ n: UInt8) -> UInt8 { n < 10 ? 48 + n : 87 + n }
}
