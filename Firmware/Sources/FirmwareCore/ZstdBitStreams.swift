/// Zstandard's backward bitstream (RFC 8878 §4.1: Huffman streams, FSE-compressed Huffman weights
/// and the sequences bitstream). The stream is read from its last byte towards its first; the last
/// byte's highest set bit marks where the data starts. Unread bits sit at the top of `bits`
/// (`count` of them are counted); bits read past the stream's first byte come out as zeros and
/// drive `count` negative, which the caller sees as ``overflowed``.
struct ZstdBackwardBits {
  let start: UnsafePointer<UInt8>
  /// The next byte to load is `pos - 1`.
  var pos: UnsafePointer<UInt8>
  var bits: UInt64 = 0
  var count = 0

  /// A reader over `length` bytes at `start`; nil when the stream is empty or its last byte is zero
  /// (no start marker).
  init?(start: UnsafePointer<UInt8>, length: Int) {
    guard length > 0, start[length - 1] != 0 else { return nil }
    self.start = start
    pos = start + length
    refill()
    let padding = start[length - 1].leadingZeroBitCount + 1
    bits = bits &<< UInt64(padding)
    count -= padding
  }

  /// Tops the container up to at least 57 counted bits, or to all that is left of the stream.
  @inline(__always) mutating func refill() {
    guard count <= 56 else { return }
    if pos - start >= 8 {
      // Load the 8 bytes below `pos` at once: the whole bytes are counted; the partial byte's bits
      // below them are right too and are simply loaded again next time.
      let word = UInt64(littleEndian: UnsafeRawPointer(pos - 8).loadUnaligned(as: UInt64.self))
      bits |= word &>> UInt64(count)
      let whole = (64 - count) >> 3
      pos -= whole
      count += whole << 3
    } else {
      while count <= 56, pos > start {
        pos -= 1
        bits |= UInt64(pos.pointee) &<< UInt64(56 - count)
        count += 8
      }
    }
  }

  /// The next `n` bits (0 ≤ n ≤ 63); needs `count >= n` after a refill, or reads zeros past the start.
  @inline(__always) mutating func read(_ n: Int) -> UInt64 {
    let value = (bits &>> 1) &>> UInt64(63 - n)
    bits = bits &<< UInt64(n)
    count -= n
    return value
  }

  /// The next `n` bits (1 ≤ n ≤ 63) without consuming them.
  @inline(__always) func peek(_ n: Int) -> Int { Int(truncatingIfNeeded: bits &>> UInt64(64 - n)) }

  /// Consumes `n` bits already peeked.
  @inline(__always) mutating func skip(_ n: Int) {
    bits = bits &<< UInt64(n)
    count -= n
  }

  /// True once more bits were read than the stream holds.
  var overflowed: Bool { count < 0 }

  /// True when every bit of the stream was read, no more and no less.
  var isExactlyConsumed: Bool { count == 0 && pos == start }
}

/// A little-endian forward bit reader over a bounded byte range (FSE table descriptions).
/// Reading past `end` is reported by ``isPastEnd``, never performed.
struct ZstdForwardBits {
  let base: UnsafePointer<UInt8>
  let end: Int
  var bitPosition: Int

  init(base: UnsafePointer<UInt8>, start: Int, end: Int) {
    self.base = base
    self.end = end
    bitPosition = start * 8
  }

  /// The next `n` bits (n ≤ 24) without consuming them; bytes past `end` read as zeros.
  func peek(_ n: Int) -> Int {
    var value = 0
    let first = bitPosition >> 3
    var i = 0
    while i < 4 {
      let index = first + i
      if index < end { value |= Int(base[index]) << (8 * i) }
      i += 1
    }
    return (value >> (bitPosition & 7)) & ((1 << n) - 1)
  }

  mutating func skip(_ n: Int) { bitPosition += n }

  /// True when more bits were consumed than the range holds.
  var isPastEnd: Bool { bitPosition > end * 8 }

  /// The offset of the first byte not (even partly) consumed.
  var nextByte: Int { (bitPosition + 7) >> 3 }
}
