/// What the symbols of an FSE table stand for (RFC 8878 §3.1.1.3.2.1, §4.2.1.2): the limits of
/// each alphabet, and the value and extra bits each symbol (a "code") decodes to.
enum ZstdSymbolKind {
  case literalLength, matchLength, offset, huffmanWeight

  /// The largest symbol a table may give a non-zero probability.
  var maxSymbol: Int {
    switch self {
    case .literalLength: return 35
    case .matchLength: return 52
    case .offset: return 31
    case .huffmanWeight: return 11
    }
  }

  /// The largest accuracy log a table description may declare.
  var maxAccuracyLog: Int {
    switch self {
    case .literalLength, .matchLength: return 9
    case .offset: return 8
    case .huffmanWeight: return 6
    }
  }

  /// The baseline and number of extra bits of `symbol` (≤ ``maxSymbol``).
  func value(of symbol: Int) -> (base: UInt32, extraBits: Int) {
    switch self {
    case .literalLength:
      return (Self.literalLengthBase[symbol], Int(Self.literalLengthExtra[symbol]))
    case .matchLength:
      return (Self.matchLengthBase[symbol], Int(Self.matchLengthExtra[symbol]))
    case .offset:
      return (UInt32(1) << UInt32(symbol), symbol)
    case .huffmanWeight:
      return (UInt32(symbol), 0)
    }
  }

  static let literalLengthBase: [UInt32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 28, 32, 40,
    48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
  ]
  static let literalLengthExtra: [UInt8] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3,
    4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
  ]
  static let matchLengthBase: [UInt32] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 33, 34, 35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515,
    1027, 2051, 4099, 8195, 16387, 32771, 65539,
  ]
  static let matchLengthExtra: [UInt8] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11,
    12, 13, 14, 15, 16,
  ]

  /// The predefined distributions (RFC 8878 §3.1.1.3.2.2) and their accuracy logs.
  var predefined: (counts: [Int16], accuracyLog: Int) {
    switch self {
    case .literalLength:
      return ([4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
               -1, -1, -1, -1], 6)
    case .matchLength:
      return ([1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
               1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1], 6)
    case .offset:
      return ([1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1], 5)
    case .huffmanWeight:
      return ([], 0)
    }
  }
}

/// One FSE decoding table (RFC 8878 §4.1). Each cell packs, low to high: the next state's
/// baseline (16 bits), the number of state bits to read (8), the symbol's extra bits (8) and the
/// symbol's baseline value (32). States are always below `1 << accuracyLog`, by construction.
struct ZstdFSETable {
  let cells: UnsafeMutablePointer<UInt64>
  var accuracyLog = 0
  /// False until a table was built in the current frame ("repeat" mode needs one).
  var isBuilt = false

  init(capacityLog: Int) {
    cells = .allocate(capacity: 1 << capacityLog)
    cells.initialize(repeating: 0, count: 1 << capacityLog)
  }

  func deallocate() { cells.deallocate() }

  @inline(__always) static func nextStateBase(_ cell: UInt64) -> Int { Int(cell & 0xFFFF) }
  @inline(__always) static func stateBits(_ cell: UInt64) -> Int { Int((cell >> 16) & 0xFF) }
  @inline(__always) static func extraBits(_ cell: UInt64) -> Int { Int((cell >> 24) & 0xFF) }
  @inline(__always) static func baseValue(_ cell: UInt64) -> Int { Int(cell >> 32) }

  /// A one-cell table that always decodes `symbol` and reads no state bits ("RLE" mode).
  mutating func buildRLE(symbol: Int, kind: ZstdSymbolKind) {
    let value = kind.value(of: symbol)
    cells[0] = UInt64(value.extraBits) << 24 | UInt64(value.base) << 32
    accuracyLog = 0
    isBuilt = true
  }

  /// Builds the table of a normalized distribution: `counts[s]` is symbol s's count, -1 for a
  /// "less than 1" probability; the counts' magnitudes sum to `1 << accuracyLog`.
  mutating func build(counts: UnsafePointer<Int16>, symbolCount: Int, accuracyLog log: Int, kind: ZstdSymbolKind,
                      scratch: ZstdEntropyScratch) -> Bool {
    let size = 1 << log
    let symbols = scratch.spread
    let next = scratch.nextState
    var highThreshold = size
    for s in 0..<symbolCount where counts[s] == -1 {
      highThreshold -= 1
      symbols[highThreshold] = UInt8(s)
      next[s] = 1
    }
    let step = (size >> 1) + (size >> 3) + 3
    let mask = size - 1
    var position = 0
    for s in 0..<symbolCount where counts[s] > 0 {
      next[s] = UInt16(counts[s])
      for _ in 0..<Int(counts[s]) {
        symbols[position] = UInt8(s)
        repeat { position = (position + step) & mask } while position >= highThreshold
      }
    }
    guard position == 0 else { return false }
    for i in 0..<size {
      let s = Int(symbols[i])
      let state = Int(next[s])
      next[s] += 1
      let bits = log - (Int.bitWidth - 1 - state.leadingZeroBitCount)
      let base = (state << bits) - size
      let value = kind.value(of: s)
      cells[i] = UInt64(base) | UInt64(bits) << 16 | UInt64(value.extraBits) << 24 | UInt64(value.base) << 32
    }
    accuracyLog = log
    isBuilt = true
    return true
  }

  /// Builds the predefined table of `kind`.
  mutating func buildPredefined(kind: ZstdSymbolKind, scratch: ZstdEntropyScratch) {
    let (counts, log) = kind.predefined
    let built = counts.withUnsafeBufferPointer {
      build(counts: $0.baseAddress!, symbolCount: $0.count, accuracyLog: log, kind: kind, scratch: scratch)
    }
    precondition(built, "predefined FSE distribution")
  }

  /// Reads an FSE table description (RFC 8878 §4.1.1) from `base[start..<end]` and builds the
  /// table; returns the offset just past the description.
  mutating func read(base: UnsafePointer<UInt8>, start: Int, end: Int, kind: ZstdSymbolKind,
                     scratch: ZstdEntropyScratch) throws(ZstdError) -> Int {
    let corrupt = ZstdError.corruptData(offset: start, what: .fseTable)
    var reader = ZstdForwardBits(base: base, start: start, end: end)
    let log = reader.peek(4) + 5
    reader.skip(4)
    guard log <= kind.maxAccuracyLog else { throw corrupt }
    let counts = scratch.counts
    var remaining = 1 << log
    var symbol = 0
    while remaining > 0 {
      guard symbol <= kind.maxSymbol, !reader.isPastEnd else { throw corrupt }
      let bits = Int.bitWidth - (remaining + 1).leadingZeroBitCount  // highest set bit of remaining+1, plus 1
      let lowerMask = (1 << (bits - 1)) - 1
      let threshold = (1 << bits) - 1 - (remaining + 1)
      var value = reader.peek(bits)
      if value & lowerMask < threshold {
        value &= lowerMask
        reader.skip(bits - 1)
      } else {
        if value > lowerMask { value -= threshold }
        reader.skip(bits)
      }
      let probability = value - 1
      remaining -= probability < 0 ? -probability : probability
      counts[symbol] = Int16(probability)
      symbol += 1
      if probability == 0 {
        // Zero-probability runs: 2-bit repeat counts, each 3 meaning "3 more and another count".
        while true {
          guard !reader.isPastEnd else { throw corrupt }
          let zeros = reader.peek(2)
          reader.skip(2)
          guard symbol + zeros <= kind.maxSymbol + 1 else { throw corrupt }
          for _ in 0..<zeros {
            counts[symbol] = 0
            symbol += 1
          }
          if zeros != 3 { break }
        }
      }
    }
    guard remaining == 0, !reader.isPastEnd else { throw corrupt }
    guard build(counts: counts, symbolCount: symbol, accuracyLog: log, kind: kind, scratch: scratch) else {
      throw corrupt
    }
    return reader.nextByte
  }
}

/// Work areas for building FSE tables, allocated once per decompression.
final class ZstdEntropyScratch {
  let counts: UnsafeMutablePointer<Int16> = .allocate(capacity: 256)
  let spread: UnsafeMutablePointer<UInt8> = .allocate(capacity: 512)
  let nextState: UnsafeMutablePointer<UInt16> = .allocate(capacity: 256)
  /// Huffman weights: up to 255 read, plus the implied last one.
  let weights: UnsafeMutablePointer<UInt8> = .allocate(capacity: 256)

  init() {
    weights.initialize(repeating: 0, count: 256)
    counts.initialize(repeating: 0, count: 256)
    spread.initialize(repeating: 0, count: 512)
    nextState.initialize(repeating: 0, count: 256)
  }

  deinit {
    counts.deallocate()
    spread.deallocate()
    nextState.deallocate()
    weights.deallocate()
  }
}

/// The Huffman table that decodes literals (RFC 8878 §4.2): `1 << maxBits` cells, each packing a
/// symbol (low byte) and its code length (high byte); a code is looked up by its next `maxBits`
/// bits.
struct ZstdHuffmanTable {
  static let maxCodeLength = 11
  let cells: UnsafeMutablePointer<UInt16>
  var maxBits = 0
  var isBuilt = false

  init() {
    cells = .allocate(capacity: 1 << Self.maxCodeLength)
    cells.initialize(repeating: 0, count: 1 << Self.maxCodeLength)
  }

  func deallocate() { cells.deallocate() }

  /// Reads a Huffman tree description (RFC 8878 §4.2.1) from `base[start..<end]`, builds the
  /// table, and returns the offset just past the description.
  mutating func read(base: UnsafePointer<UInt8>, start: Int, end: Int, weightTable: inout ZstdFSETable,
                     scratch: ZstdEntropyScratch) throws(ZstdError) -> Int {
    let corrupt = ZstdError.corruptData(offset: start, what: .huffmanTable)
    guard start < end else { throw corrupt }
    let header = Int(base[start])
    // Weights of symbols 0..<count (the last symbol's weight is implied), 256 at most.
    let weights = scratch.weights
    var count = 0
    let next: Int
    if header < 128 {
      // FSE-compressed weights: a table description, then a backward stream read by two
      // interleaved states until it overflows.
      let streamEnd = start + 1 + header
      guard header > 0, streamEnd <= end else { throw corrupt }
      let streamStart = try weightTable.read(base: base, start: start + 1, end: streamEnd, kind: .huffmanWeight,
                                             scratch: scratch)
      guard streamStart < streamEnd,
            var bits = ZstdBackwardBits(start: base + streamStart, length: streamEnd - streamStart)
      else { throw corrupt }
      let log = weightTable.accuracyLog
      let cells = weightTable.cells
      var state1 = Int(bits.read(log))
      bits.refill()
      var state2 = Int(bits.read(log))
      while true {
        guard count < 254 else { throw corrupt }
        var cell = cells[state1]
        weights[count] = UInt8(ZstdFSETable.baseValue(cell))
        count += 1
        bits.refill()
        state1 = ZstdFSETable.nextStateBase(cell) + Int(bits.read(ZstdFSETable.stateBits(cell)))
        if bits.overflowed {
          weights[count] = UInt8(ZstdFSETable.baseValue(cells[state2]))
          count += 1
          break
        }
        cell = cells[state2]
        weights[count] = UInt8(ZstdFSETable.baseValue(cell))
        count += 1
        bits.refill()
        state2 = ZstdFSETable.nextStateBase(cell) + Int(bits.read(ZstdFSETable.stateBits(cell)))
        if bits.overflowed {
          weights[count] = UInt8(ZstdFSETable.baseValue(cells[state1]))
          count += 1
          break
        }
      }
      next = streamEnd
    } else {
      // Direct representation: 4 bits per weight, the first in the high nibble.
      count = header - 127
      next = start + 1 + (count + 1) / 2
      guard next <= end else { throw corrupt }
      for i in 0..<count {
        let byte = base[start + 1 + i / 2]
        weights[i] = i & 1 == 0 ? byte >> 4 : byte & 15
      }
    }
    guard build(weights: weights, count: count) else { throw corrupt }
    return next
  }

  /// Builds the table from `count` explicit weights (each ≤ 11) plus the implied last one.
  mutating func build(weights: UnsafeMutablePointer<UInt8>, count: Int) -> Bool {
    var total = 0
    for i in 0..<count {
      let w = Int(weights[i])
      guard w <= Self.maxCodeLength else { return false }
      if w > 0 { total += 1 << (w - 1) }
    }
    guard total > 0 else { return false }
    let maxBits = Int.bitWidth - total.leadingZeroBitCount  // floor(log2(total)) + 1
    guard maxBits <= Self.maxCodeLength else { return false }
    let left = (1 << maxBits) - total
    guard left & (left - 1) == 0 else { return false }
    weights[count] = UInt8(Int.bitWidth - left.leadingZeroBitCount)  // log2(left) + 1
    let symbols = count + 1
    // Code lengths: maxBits + 1 - weight. Longest codes take the lowest cells; within one length,
    // symbols in increasing order.
    var rankCount = [Int](repeating: 0, count: Self.maxCodeLength + 2)
    for s in 0..<symbols where weights[s] > 0 { rankCount[maxBits + 1 - Int(weights[s])] += 1 }
    var rankStart = [Int](repeating: 0, count: Self.maxCodeLength + 2)
    var next = 0
    var length = maxBits
    while length >= 1 {
      rankStart[length] = next
      next += rankCount[length] << (maxBits - length)
      length -= 1
    }
    guard next == 1 << maxBits else { return false }
    for s in 0..<symbols where weights[s] > 0 {
      let length = maxBits + 1 - Int(weights[s])
      let span = 1 << (maxBits - length)
      let cell = UInt16(s) | UInt16(length) << 8
      let first = rankStart[length]
      for i in first..<(first + span) { cells[i] = cell }
      rankStart[length] = first + span
    }
    self.maxBits = maxBits
    isBuilt = true
    return true
  }

  /// Decodes `count` literals from the backward stream `base[start..<end]` into `output`; the
  /// stream must be consumed exactly.
  func decodeStream(base: UnsafePointer<UInt8>, start: Int, end: Int, into output: UnsafeMutablePointer<UInt8>,
                    count: Int) throws(ZstdError) {
    let corrupt = ZstdError.corruptData(offset: start, what: .huffmanStream)
    guard var bits = ZstdBackwardBits(start: base + start, length: end - start) else { throw corrupt }
    let maxBits = self.maxBits
    let cells = self.cells
    var i = 0
    // Four codes of at most 11 bits per refill (a refill leaves at least 57 bits while any remain).
    while i + 4 <= count {
      bits.refill()
      for k in 0..<4 {
        let cell = cells[bits.peek(maxBits)]
        output[i + k] = UInt8(truncatingIfNeeded: cell)
        bits.skip(Int(cell >> 8))
      }
      i += 4
    }
    while i < count {
      bits.refill()
      let cell = cells[bits.peek(maxBits)]
      output[i] = UInt8(truncatingIfNeeded: cell)
      bits.skip(Int(cell >> 8))
      i += 1
    }
    guard bits.isExactlyConsumed else { throw corrupt }
  }
}
