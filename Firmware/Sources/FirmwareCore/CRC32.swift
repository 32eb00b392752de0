/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by GPT and gzip.
public enum CRC32 {
  /// The CRC-32 of `bytes`.
  public static func checksum(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { checksum($0) }
  }

  /// The CRC-32 of `bytes`.
  public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    ~update(0xFFFF_FFFF, with: bytes)
  }

  /// Continues a running (pre-inverted) CRC with `bytes`, eight bytes per step (slicing-by-8):
  /// gzip checks every byte of a ~50 MB kernel with it.
  public static func update(_ crc: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
    guard let base = bytes.baseAddress else { return crc }
    return table.withUnsafeBufferPointer { t in
      var c = crc
      var p = base
      var n = bytes.count
      // Aligned 8-byte loads (the firmware is built with strict alignment).
      while n > 0 && UInt(bitPattern: p) & 7 != 0 {
        c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
        p += 1
        n -= 1
      }
      while n >= 8 {
        let word = UInt64(littleEndian: p.load(as: UInt64.self)) ^ UInt64(c)
        // In four parts: one expression of eight takes Swift 6.2's type checker too long.
        let low = t[7 * 256 + Int(word & 0xFF)] ^ t[6 * 256 + Int((word >> 8) & 0xFF)]
        let midLow = t[5 * 256 + Int((word >> 16) & 0xFF)] ^ t[4 * 256 + Int((word >> 24) & 0xFF)]
        let midHigh = t[3 * 256 + Int((word >> 32) & 0xFF)] ^ t[2 * 256 + Int((word >> 40) & 0xFF)]
        let high = t[256 + Int((word >> 48) & 0xFF)] ^ t[Int(word >> 56)]
        c = (low ^ midLow) ^ (midHigh ^ high)
        p += 8
        n -= 8
      }
      while n > 0 {
        c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
        p += 1
        n -= 1
      }
      return c
    }
  }

  /// The CRC-32 of `bytes`, bit by bit, without the table: for the firmware's runtime
  /// services, which must not read the heap the table lives in (the OS owns it by then).
  public static func checksumWithoutTable(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
      c ^= UInt32(byte)
      for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) }
    }
    return ~c
  }

  /// Eight 256-entry tables: `table[k * 256 + b]` is the CRC of byte `b` followed by `k` zero bytes.
  static let table: [UInt32] = {
    var t = [UInt32](repeating: 0, count: 8 * 256)
    for b in 0..<256 {
      var c = UInt32(b)
      for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) }
      t[b] = c
    }
    for k in 1..<8 {
      for b in 0..<256 { t[k * 256 + b] = (t[(k - 1) * 256 + b] >> 8) ^ t[Int(t[(k - 1) * 256 + b] & 0xFF)] }
    }
    return t
  }()
}
