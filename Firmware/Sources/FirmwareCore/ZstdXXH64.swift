/// XXH64 (xxHash, 64-bit), the hash behind a Zstandard frame's content checksum (RFC 8878 §3.1.1:
/// the low 32 bits of XXH64 with seed 0 over the frame's decompressed content).
public enum XXH64 {
  static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
  static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
  static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
  static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
  static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

  /// The XXH64 of `bytes` with `seed`.
  public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
    let length = bytes.count
    guard let base = bytes.baseAddress, length > 0 else { return avalanche(seed &+ prime5) }
    var p = 0
    var h: UInt64
    if length >= 32 {
      var v1 = seed &+ prime1 &+ prime2
      var v2 = seed &+ prime2
      var v3 = seed
      var v4 = seed &- prime1
      while p <= length - 32 {
        v1 = round(v1, load64(base, p))
        v2 = round(v2, load64(base, p + 8))
        v3 = round(v3, load64(base, p + 16))
        v4 = round(v4, load64(base, p + 24))
        p += 32
      }
      h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
      h = merge(h, v1)
      h = merge(h, v2)
      h = merge(h, v3)
      h = merge(h, v4)
    } else {
      h = seed &+ prime5
    }
    h = h &+ UInt64(length)
    while p + 8 <= length {
      h ^= round(0, load64(base, p))
      h = rotl(h, 27) &* prime1 &+ prime4
      p += 8
    }
    if p + 4 <= length {
      h ^= UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: p, as: UInt32.self))) &* prime1
      h = rotl(h, 23) &* prime2 &+ prime3
      p += 4
    }
    while p < length {
      h ^= UInt64(base.load(fromByteOffset: p, as: UInt8.self)) &* prime5
      h = rotl(h, 11) &* prime1
      p += 1
    }
    return avalanche(h)
  }

  /// The XXH64 of `bytes` with `seed`.
  public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
    bytes.withUnsafeBytes { hash($0, seed: seed) }
  }

  @inline(__always) static func load64(_ base: UnsafeRawPointer, _ offset: Int) -> UInt64 {
    UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
  }

  @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x &<< r) | (x &>> (64 - r)) }

  @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
    rotl(acc &+ input &* prime2, 31) &* prime1
  }

  @inline(__always) static func merge(_ acc: UInt64, _ value: UInt64) -> UInt64 {
    (acc ^ round(0, value)) &* prime1 &+ prime4
  }

  static func avalanche(_ value: UInt64) -> UInt64 {
    var h = value
    h ^= h >> 33
    h = h &* prime2
    h ^= h >> 29
    h = h &* prime3
    h ^= h >> 32
    return h
  }
}
