/// SHA-256 and SHA-512 (FIPS 180-4), in plain Swift for both the firmware (Embedded Swift) and the
/// host (`RealmMeasurement`, which builds Realm Initial Measurements without Foundation).
///
/// Both are value types: `update` any number of times, then `finalize` (which leaves the value
/// untouched, so a running hash can be finalized more than once). Whole blocks are compressed
/// straight from the caller's bytes; only a partial block is copied, into a fixed-size tuple.
/// ``SHA2Blocks`` does that framing and the padding for both; each hash adds its state and its
/// compression function.

/// What SHA-256 and SHA-512 offer alike; the conveniences below serve both.
public protocol SHA2Hash {
  init()
  /// Hashes `bytes` after everything hashed so far.
  mutating func update(_ bytes: UnsafeRawBufferPointer)
  /// The digest of everything hashed so far.
  func finalize() -> [UInt8]
}

extension SHA2Hash {
  /// Hashes `bytes` after everything hashed so far.
  public mutating func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  /// The digest of `bytes`.
  public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    var hash = Self()
    hash.update(bytes)
    return hash.finalize()
  }

  /// The digest of `bytes`.
  public static func hash(_ bytes: [UInt8]) -> [UInt8] {
    bytes.withUnsafeBytes { hash($0) }
  }
}

/// SHA-256: 32-byte digests of 64-byte blocks.
public struct SHA256: SHA2Hash, Sendable {
  public static let digestSize = 32
  public static let blockSize = 64

  typealias State = (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)

  var state: State = (
    0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19
  )
  var blocks = SHA2Blocks(blockSize: blockSize, lengthFieldSize: 8)

  public init() {}

  /// A compression function the platform offers in place of ``compress(_:_:blocks:)`` (the
  /// firmware's, with the ARMv8 SHA-256 instructions): it compresses `blocks` 64-byte blocks at
  /// the data pointer into the state's eight words h0...h7, with the 64 round constants it is
  /// handed (``sha256RoundConstants``, the one table). Set once, before any hashing.
  public nonisolated(unsafe) static var platformCompress: (
    @convention(c) (UnsafeMutablePointer<UInt32>?, UnsafeRawPointer?, Int, UnsafePointer<UInt32>?) -> Void
  )?

  /// Hashes `bytes` after everything hashed so far.
  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    var state = self.state
    blocks.update(bytes) { Self.compressAny(&state, $0, blocks: $1) }
    self.state = state
  }

  /// The digest of everything hashed so far (32 bytes).
  public func finalize() -> [UInt8] {
    var state = self.state
    blocks.finish { Self.compressAny(&state, $0, blocks: $1) }
    return bigEndianBytes(of: state, as: UInt32.self)
  }

  /// ``platformCompress`` when there is one, else ``compress(_:_:blocks:)``.
  static func compressAny(_ state: inout State, _ data: UnsafeRawPointer, blocks: Int) {
    guard let platformCompress else { return compress(&state, data, blocks: blocks) }
    sha256RoundConstants.withUnsafeBufferPointer { k in
      withUnsafeMutableBytes(of: &state) { platformCompress($0.baseAddress?.assumingMemoryBound(to: UInt32.self), data, blocks, k.baseAddress) }
    }
  }

  /// Compresses `blocks` 64-byte blocks at `data` into `state`.
  static func compress(_ state: inout State, _ data: UnsafeRawPointer, blocks: Int) {
    var (h0, h1, h2, h3, h4, h5, h6, h7) = state
    // The message schedule, as a 16-word ring.
    var schedule: (
      UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
      UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32
    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &schedule) { raw in
      let w = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt32.self)
      sha256RoundConstants.withUnsafeBufferPointer { k in
        for block in 0..<blocks {
          let m = data + block * 64
          var (a, b, c, d, e, f, g, h) = (h0, h1, h2, h3, h4, h5, h6, h7)
          for t in 0..<64 {
            let wt: UInt32
            if t < 16 {
              wt = UInt32(bigEndian: m.loadUnaligned(fromByteOffset: t * 4, as: UInt32.self))
            } else {
              let w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15]
              let s0 = w15.rotatedRight(7) ^ w15.rotatedRight(18) ^ (w15 >> 3)
              let s1 = w2.rotatedRight(17) ^ w2.rotatedRight(19) ^ (w2 >> 10)
              wt = w[t & 15] &+ s0 &+ w[(t - 7) & 15] &+ s1
            }
            w[t & 15] = wt
            let t1 = h &+ (e.rotatedRight(6) ^ e.rotatedRight(11) ^ e.rotatedRight(25)) &+ ((e & f) ^ (~e & g))
              &+ k[t] &+ wt
            let t2 = (a.rotatedRight(2) ^ a.rotatedRight(13) ^ a.rotatedRight(22)) &+ ((a & b) ^ (a & c) ^ (b & c))
            h = g
            g = f
            f = e
            e = d &+ t1
            d = c
            c = b
            b = a
            a = t1 &+ t2
          }
          h0 &+= a
          h1 &+= b
          h2 &+= c
          h3 &+= d
          h4 &+= e
          h5 &+= f
          h6 &+= g
          h7 &+= h
        }
      }
    }
    state = (h0, h1, h2, h3, h4, h5, h6, h7)
  }
}

/// SHA-512: 64-byte digests of 128-byte blocks.
public struct SHA512: SHA2Hash, Sendable {
  public static let digestSize = 64
  public static let blockSize = 128

  typealias State = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

  var state: State = (
    0x6a09_e667_f3bc_c908, 0xbb67_ae85_84ca_a73b, 0x3c6e_f372_fe94_f82b, 0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1, 0x9b05_688c_2b3e_6c1f, 0x1f83_d9ab_fb41_bd6b, 0x5be0_cd19_137e_2179
  )
  var blocks = SHA2Blocks(blockSize: blockSize, lengthFieldSize: 16)

  public init() {}

  /// Hashes `bytes` after everything hashed so far.
  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    var state = self.state
    blocks.update(bytes) { Self.compress(&state, $0, blocks: $1) }
    self.state = state
  }

  /// The digest of everything hashed so far (64 bytes).
  public func finalize() -> [UInt8] {
    var state = self.state
    blocks.finish { Self.compress(&state, $0, blocks: $1) }
    return bigEndianBytes(of: state, as: UInt64.self)
  }

  /// Compresses `blocks` 128-byte blocks at `data` into `state`.
  static func compress(_ state: inout State, _ data: UnsafeRawPointer, blocks: Int) {
    var (h0, h1, h2, h3, h4, h5, h6, h7) = state
    var schedule: SHA2Blocks.Storage = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &schedule) { raw in
      let w = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self)
      sha512RoundConstants.withUnsafeBufferPointer { k in
        for block in 0..<blocks {
          let m = data + block * 128
          var (a, b, c, d, e, f, g, h) = (h0, h1, h2, h3, h4, h5, h6, h7)
          for t in 0..<80 {
            let wt: UInt64
            if t < 16 {
              wt = UInt64(bigEndian: m.loadUnaligned(fromByteOffset: t * 8, as: UInt64.self))
            } else {
              let w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15]
              let s0 = w15.rotatedRight(1) ^ w15.rotatedRight(8) ^ (w15 >> 7)
              let s1 = w2.rotatedRight(19) ^ w2.rotatedRight(61) ^ (w2 >> 6)
              wt = w[t & 15] &+ s0 &+ w[(t - 7) & 15] &+ s1
            }
            w[t & 15] = wt
            let t1 = h &+ (e.rotatedRight(14) ^ e.rotatedRight(18) ^ e.rotatedRight(41)) &+ ((e & f) ^ (~e & g))
              &+ k[t] &+ wt
            let t2 = (a.rotatedRight(28) ^ a.rotatedRight(34) ^ a.rotatedRight(39)) &+ ((a & b) ^ (a & c) ^ (b & c))
            h = g
            g = f
            f = e
            e = d &+ t1
            d = c
            c = b
            b = a
            a = t1 &+ t2
          }
          h0 &+= a
          h1 &+= b
          h2 &+= c
          h3 &+= d
          h4 &+= e
          h5 &+= f
          h6 &+= g
          h7 &+= h
        }
      }
    }
    state = (h0, h1, h2, h3, h4, h5, h6, h7)
  }
}

/// The framing SHA-256 and SHA-512 share (FIPS 180-4 §5.1, §6): input cut into whole blocks for
/// the compression function, a partial block kept between updates, and the final padding (0x80,
/// zeros, the big-endian bit length in the last `lengthFieldSize` bytes of a block).
struct SHA2Blocks: Sendable {
  /// Room for one block of either hash (128 bytes).
  typealias Storage = (
    UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
    UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
  )

  let blockSize: Int
  let lengthFieldSize: Int
  /// The bytes of a partial block (the first `pending` bytes).
  var buffer: Storage = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
  var pending = 0
  /// Bytes hashed so far (modulo 2^64: the bit length is `length` * 8, as wide as the field).
  var length: UInt64 = 0

  init(blockSize: Int, lengthFieldSize: Int) {
    self.blockSize = blockSize
    self.lengthFieldSize = lengthFieldSize
  }

  /// Feeds `bytes`, handing runs of whole blocks to `compress(pointer, blockCount)`.
  mutating func update(_ bytes: UnsafeRawBufferPointer, compress: (UnsafeRawPointer, Int) -> Void) {
    guard var p = bytes.baseAddress, bytes.count > 0 else { return }
    var n = bytes.count
    length &+= UInt64(n)
    if pending > 0 {
      let offset = pending
      let take = Swift.min(blockSize - offset, n)
      withUnsafeMutableBytes(of: &buffer) { b in
        b.baseAddress.unsafelyUnwrapped.advanced(by: offset).copyMemory(from: p, byteCount: take)
      }
      pending = offset + take
      p += take
      n -= take
      guard pending == blockSize else { return }
      let block = buffer
      withUnsafeBytes(of: block) { b in compress(b.baseAddress.unsafelyUnwrapped, 1) }
      pending = 0
    }
    let blocks = n / blockSize
    if blocks > 0 {
      compress(p, blocks)
      p += blocks * blockSize
      n -= blocks * blockSize
    }
    if n > 0 {
      withUnsafeMutableBytes(of: &buffer) { b in b.baseAddress.unsafelyUnwrapped.copyMemory(from: p, byteCount: n) }
      pending = n
    }
  }

  /// Pads a copy of what is buffered and hands the last block(s) to `compress`.
  func finish(compress: (UnsafeRawPointer, Int) -> Void) {
    var copy = self
    let lengthAt = blockSize - lengthFieldSize
    var padding: Storage = (0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    let padCount = pending < lengthAt ? lengthAt - pending : blockSize + lengthAt - pending
    withUnsafeBytes(of: &padding) { copy.update(UnsafeRawBufferPointer(rebasing: $0[0..<padCount]), compress: compress) }
    // The bit length as a 128-bit big-endian number, of which the field takes the low bytes.
    var bits = ((length >> 61).bigEndian, (length &<< 3).bigEndian)
    withUnsafeBytes(of: &bits) { copy.update(UnsafeRawBufferPointer(rebasing: $0[(16 - lengthFieldSize)...]), compress: compress) }
  }
}

/// The bytes of the eight `Word`s of `state`, each big-endian.
func bigEndianBytes<State, Word: FixedWidthInteger>(of state: State, as: Word.Type) -> [UInt8] {
  var digest: [UInt8] = []
  digest.reserveCapacity(8 * MemoryLayout<Word>.size)
  withUnsafeBytes(of: state) { words in
    for i in 0..<8 {
      let word = words.load(fromByteOffset: i * MemoryLayout<Word>.size, as: Word.self)
      for shift in stride(from: Word.bitWidth - 8, through: 0, by: -8) { digest.append(UInt8(truncatingIfNeeded: word >> shift)) }
    }
  }
  return digest
}

extension UInt32 {
  @inline(__always) func rotatedRight(_ n: UInt32) -> UInt32 { (self >> n) | (self << (32 - n)) }
}

extension UInt64 {
  @inline(__always) func rotatedRight(_ n: UInt64) -> UInt64 { (self >> n) | (self << (64 - n)) }
}

/// FIPS 180-4 §4.2.2.
let sha256RoundConstants: [UInt32] = [
  0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
  0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
  0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
  0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
  0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
  0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
  0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
  0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
]

/// FIPS 180-4 §4.2.3.
let sha512RoundConstants: [UInt64] = [
  0x428a_2f98_d728_ae22, 0x7137_4491_23ef_65cd, 0xb5c0_fbcf_ec4d_3b2f, 0xe9b5_dba5_8189_dbbc,
  0x3956_c25b_f348_b538, 0x59f1_11f1_b605_d019, 0x923f_82a4_af19_4f9b, 0xab1c_5ed5_da6d_8118,
  0xd807_aa98_a303_0242, 0x1283_5b01_4570_6fbe, 0x2431_85be_4ee4_b28c, 0x550c_7dc3_d5ff_b4e2,
  0x72be_5d74_f27b_896f, 0x80de_b1fe_3b16_96b1, 0x9bdc_06a7_25c7_1235, 0xc19b_f174_cf69_2694,
  0xe49b_69c1_9ef1_4ad2, 0xefbe_4786_384f_25e3, 0x0fc1_9dc6_8b8c_d5b5, 0x240c_a1cc_77ac_9c65,
  0x2de9_2c6f_592b_0275, 0x4a74_84aa_6ea6_e483, 0x5cb0_a9dc_bd41_fbd4, 0x76f9_88da_8311_53b5,
  0x983e_5152_ee66_dfab, 0xa831_c66d_2db4_3210, 0xb003_27c8_98fb_213f, 0xbf59_7fc7_beef_0ee4,
  0xc6e0_0bf3_3da8_8fc2, 0xd5a7_9147_930a_a725, 0x06ca_6351_e003_826f, 0x1429_2967_0a0e_6e70,
  0x27b7_0a85_46d2_2ffc, 0x2e1b_2138_5c26_c926, 0x4d2c_6dfc_5ac4_2aed, 0x5338_0d13_9d95_b3df,
  0x650a_7354_8baf_63de, 0x766a_0abb_3c77_b2a8, 0x81c2_c92e_47ed_aee6, 0x9272_2c85_1482_353b,
  0xa2bf_e8a1_4cf1_0364, 0xa81a_664b_bc42_3001, 0xc24b_8b70_d0f8_9791, 0xc76c_51a3_0654_be30,
  0xd192_e819_d6ef_5218, 0xd699_0624_5565_a910, 0xf40e_3585_5771_202a, 0x106a_a070_32bb_d1b8,
  0x19a4_c116_b8d2_d0c8, 0x1e37_6c08_5141_ab53, 0x2748_774c_df8e_eb99, 0x34b0_bcb5_e19b_48a8,
  0x391c_0cb3_c5c9_5a63, 0x4ed8_aa4a_e341_8acb, 0x5b9c_ca4f_7763_e373, 0x682e_6ff3_d6b2_b8a3,
  0x748f_82ee_5def_b2fc, 0x78a5_636f_4317_2f60, 0x84c8_7814_a1f0_ab72, 0x8cc7_0208_1a64_39ec,
  0x90be_fffa_2363_1e28, 0xa450_6ceb_de82_bde9, 0xbef9_a3f7_b2c6_7915, 0xc671_78f2_e372_532b,
  0xca27_3ece_ea26_619c, 0xd186_b8c7_21c0_c207, 0xeada_7dd6_cde0_eb1e, 0xf57d_4f7f_ee6e_d178,
  0x06f0_67aa_7217_6fba, 0x0a63_7dc5_a2c8_98a6, 0x113f_9804_bef9_0dae, 0x1b71_0b35_131c_471b,
  0x28db_77f5_2304_7d84, 0x32ca_ab7b_40c7_2493, 0x3c9e_be0a_15c9_bebc, 0x431d_67c4_9c10_0d4c,
  0x4cc5_d4be_cb3e_42b6, 0x597f_299c_fc65_7e2a, 0x5fcb_6fab_3ad6_faec, 0x6c44_198c_4a47_5817,
]
