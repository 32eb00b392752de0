/// A DEFLATE (RFC 1951) decoder that writes straight into the caller's buffer: the output is the
/// window, so there is no copy and no 32 KiB history buffer. Every read is bounded by the input,
/// every write by the output, and each step consumes input bits, so malicious data ends in a
/// `DecompressionError`, never a trap or a loop. Code-length sets follow zlib's rules:
/// over-subscribed sets are rejected, and incomplete ones too, except a single one-bit code
/// (literal/length or distance) and an empty distance set.
public enum Inflate {
  /// Decompresses the raw DEFLATE stream at the start of `input` into `output`.
  /// With `stopWhenFull`, a stream that would produce more than `output.count` bytes stops once the
  /// output is full (to read a header of what is inside) instead of failing with `outputTooSmall`.
  /// Returns the input bytes the stream occupies (its last byte included) and the bytes written.
  public static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                                stopWhenFull: Bool = false) throws(DecompressionError) -> (consumed: Int, produced: Int)
  {
    guard let inBase = input.baseAddress, input.count > 0 else { throw .truncated }
    let tables = UnsafeMutablePointer<UInt32>.allocate(capacity: HuffmanTable.storage)
    defer { tables.deallocate() }
    var inflater = Inflater(input: inBase.assumingMemoryBound(to: UInt8.self), inputCount: input.count,
                            output: output.baseAddress?.assumingMemoryBound(to: UInt8.self), outputCount: output.count,
                            tables: tables, stopWhenFull: stopWhenFull)
    try inflater.run()
    return (inflater.position, inflater.outPos)
  }
}

/// Decode-table entries: bits 0-4 the code length (0: no such code), 5-7 the kind, 8-11 the extra
/// bits (for a subtable pointer: its index bits), 16-31 the value (literal, base, subtable offset).
enum HuffmanTable {
  static let literal: UInt32 = 0 << 5
  static let length: UInt32 = 1 << 5
  static let endOfBlock: UInt32 = 2 << 5
  static let subtable: UInt32 = 3 << 5
  static let kindMask: UInt32 = 7 << 5

  static let literalRootBits = 10
  static let distanceRootBits = 8
  static let codeLengthRootBits = 7
  // Capacities: the root table plus, at most, one full-size subtable per code longer than the root.
  static let literalCapacity = (1 << 10) + 286 * (1 << (15 - 10))
  static let distanceCapacity = (1 << 8) + 30 * (1 << (15 - 8))
  static let codeLengthCapacity = 1 << 7
  static let fixedLiteralCapacity = 1 << 10
  static let fixedDistanceCapacity = 1 << 8
  static let storage = literalCapacity + distanceCapacity + codeLengthCapacity + fixedLiteralCapacity + fixedDistanceCapacity

  /// Which alphabet a table decodes: it decides each symbol's entry.
  enum Alphabet { case literalLength, distance, codeLength }

  static let lengthBase: [UInt16] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
                                     115, 131, 163, 195, 227, 258]
  static let lengthExtra: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
  static let distanceBase: [UInt16] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
                                       1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
  static let distanceExtra: [UInt8] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
                                       13, 13]
  /// The order in which a dynamic block lists the code-length code's lengths.
  static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

  /// The entry for `symbol` with a code of `bits` bits, or 0 for a symbol that may not occur
  /// (literal/length 286-287, distance 30-31).
  static func entry(_ alphabet: Alphabet, symbol: Int, bits: Int) -> UInt32 {
    let n = UInt32(bits)
    switch alphabet {
    case .codeLength: return literal | n | UInt32(symbol) << 16
    case .literalLength:
      if symbol < 256 { return literal | n | UInt32(symbol) << 16 }
      if symbol == 256 { return endOfBlock | n }
      if symbol > 285 { return 0 }
      return length | n | UInt32(lengthExtra[symbol - 257]) << 8 | UInt32(lengthBase[symbol - 257]) << 16
    case .distance:
      if symbol > 29 { return 0 }
      return length | n | UInt32(distanceExtra[symbol]) << 8 | UInt32(distanceBase[symbol]) << 16
    }
  }

  /// Fills `table` (room for `capacity` entries) with the canonical Huffman code of `lengths`,
  /// indexed by the next `rootBits` input bits (LSB first), longer codes through subtables.
  /// Returns false for a set zlib rejects: over-subscribed, or incomplete unless `allowIncomplete`
  /// and it is empty or a single one-bit code.
  static func build(_ lengths: UnsafePointer<UInt8>, count: Int, alphabet: Alphabet, rootBits: Int,
                    into table: UnsafeMutablePointer<UInt32>, capacity: Int, allowIncomplete: Bool) -> Bool {
    var counts = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var next = counts
    return withUnsafeMutableBytes(of: &counts) { countBytes in
      withUnsafeMutableBytes(of: &next) { nextBytes in
        let lengthCount = countBytes.bindMemory(to: Int.self)
        let nextCode = nextBytes.bindMemory(to: Int.self)
        var maxLength = 0
        for i in 0..<count {
          let l = Int(lengths[i])
          guard l <= 15 else { return false }
          lengthCount[l] += 1
          if l > maxLength { maxLength = l }
        }
        var left = 1
        for l in 1...15 {
          left = left << 1 - lengthCount[l]
          if left < 0 { return false }  // over-subscribed
        }
        if left > 0 && !(allowIncomplete && maxLength <= 1) { return false }  // incomplete
        var code = 0
        lengthCount[0] = 0
        for l in 1...15 {
          code = (code + lengthCount[l - 1]) << 1
          nextCode[l] = code
        }
        let rootSize = 1 << rootBits
        guard rootSize <= capacity else { return false }
        let subBits = Swift.max(maxLength - rootBits, 0)
        let subSize = 1 << subBits
        table.update(repeating: 0, count: rootSize)
        var used = rootSize
        for symbol in 0..<count {
          let l = Int(lengths[symbol])
          if l == 0 { continue }
          let c = nextCode[l]
          nextCode[l] = c + 1
          var reversed = 0
          for b in 0..<l where c & (1 << (l - 1 - b)) != 0 { reversed |= 1 << b }
          let e = entry(alphabet, symbol: symbol, bits: l)
          if l <= rootBits {
            var i = reversed
            while i < rootSize { table[i] = e; i += 1 << l }
          } else {
            let prefix = reversed & (rootSize - 1)
            var pointer = table[prefix]
            if pointer == 0 {
              guard used + subSize <= capacity else { return false }
              (table + used).update(repeating: 0, count: subSize)
              pointer = subtable | UInt32(rootBits) | UInt32(subBits) << 8 | UInt32(used) << 16
              table[prefix] = pointer
              used += subSize
            }
            guard pointer & kindMask == subtable else { return false }  // not prefix-free (cannot happen)
            let base = Int(pointer >> 16)
            var i = reversed >> rootBits
            while i < subSize { table[base + i] = e; i += 1 << (l - rootBits) }
          }
        }
        return true
      }
    }
  }
}

/// The decoder's state: input position and bit buffer, output position, tables.
struct Inflater {
  let input: UnsafePointer<UInt8>
  let inputCount: Int
  let output: UnsafeMutablePointer<UInt8>?
  let outputCount: Int
  let tables: UnsafeMutablePointer<UInt32>
  let stopWhenFull: Bool
  var inPos = 0
  /// Unconsumed input bits, LSB first; bits above `bitCount` may hold input bytes already loaded
  /// again at the same place (refills OR identical bytes) and are never trusted.
  var bits: UInt64 = 0
  var bitCount = 0
  var outPos = 0
  var fixedBuilt = false

  init(input: UnsafePointer<UInt8>, inputCount: Int, output: UnsafeMutablePointer<UInt8>?, outputCount: Int,
       tables: UnsafeMutablePointer<UInt32>, stopWhenFull: Bool) {
    self.input = input
    self.inputCount = inputCount
    self.output = output
    self.outputCount = output == nil ? 0 : outputCount
    self.tables = tables
    self.stopWhenFull = stopWhenFull
  }

  var literalTable: UnsafeMutablePointer<UInt32> { tables }
  var distanceTable: UnsafeMutablePointer<UInt32> { tables + HuffmanTable.literalCapacity }
  var codeLengthTable: UnsafeMutablePointer<UInt32> { distanceTable + HuffmanTable.distanceCapacity }
  var fixedLiteralTable: UnsafeMutablePointer<UInt32> { codeLengthTable + HuffmanTable.codeLengthCapacity }
  var fixedDistanceTable: UnsafeMutablePointer<UInt32> { fixedLiteralTable + HuffmanTable.fixedLiteralCapacity }

  /// Input bytes consumed, a partly consumed last byte included (after the stream: its size).
  var position: Int { inPos - bitCount >> 3 }
  /// The input byte holding the next unconsumed bit, for error reports.
  var errorOffset: Int { (inPos * 8 - bitCount) >> 3 }

  /// Tops the bit buffer up to at least 56 bits, or with all that is left of the input.
  /// The next eight bytes come from the two aligned words that hold them (the firmware is built
  /// with strict alignment, where an unaligned load would be eight byte loads), both inside the input.
  @inline(__always) mutating func refill() {
    let address = UInt(bitPattern: input + inPos)
    let aligned = address & ~7
    if inputCount - inPos >= 16 && aligned >= UInt(bitPattern: input) {
      let words = UnsafeRawPointer(bitPattern: aligned).unsafelyUnwrapped
      let shift = UInt64(address & 7) &* 8
      let low = UInt64(littleEndian: words.load(as: UInt64.self))
      let high = UInt64(littleEndian: words.load(fromByteOffset: 8, as: UInt64.self))
      // For shift 0, high << 64 must vanish: shift it in two steps.
      let word = (low &>> shift) | ((high &<< (63 &- shift)) &<< 1)
      bits |= word &<< UInt64(bitCount)
      inPos &+= (63 &- bitCount) &>> 3
      bitCount |= 56
    } else {
      while bitCount <= 56 && inPos < inputCount {
        bits |= UInt64(input[inPos]) &<< UInt64(bitCount)
        inPos &+= 1
        bitCount &+= 8
      }
    }
  }

  /// The next `n` (0-16) bits as a number; the caller has refilled.
  @inline(__always) mutating func take(_ n: Int) throws(DecompressionError) -> Int {
    guard n <= bitCount else { throw .truncated }
    let v = Int(truncatingIfNeeded: bits & ((1 &<< UInt64(n)) &- 1))
    bits &>>= UInt64(n)
    bitCount &-= n
    return v
  }

  /// Decodes one symbol with `table`; the caller has refilled.
  @inline(__always) mutating func decode(_ table: UnsafeMutablePointer<UInt32>, rootBits: Int) throws(DecompressionError) -> UInt32 {
    var e = table[Int(truncatingIfNeeded: bits & ((1 &<< UInt64(rootBits)) &- 1))]
    if e & HuffmanTable.kindMask == HuffmanTable.subtable {
      let subMask = (UInt64(1) &<< UInt64((e >> 8) & 15)) &- 1
      e = table[Int(e >> 16) &+ Int(truncatingIfNeeded: (bits &>> UInt64(rootBits)) & subMask)]
    }
    let n = Int(e & 31)
    if n == 0 {
      // No such code; when the input ran out within 15 bits, the code may be cut off instead.
      throw inPos == inputCount && bitCount < 15 ? .truncated : .corrupt(offset: errorOffset)
    }
    guard n <= bitCount else { throw .truncated }
    bits &>>= UInt64(n)
    bitCount &-= n
    return e
  }

  mutating func run() throws(DecompressionError) {
    var last = false
    while !last {
      refill()
      last = try take(1) == 1
      switch try take(2) {
      case 0: try storedBlock()
      case 1:
        if !fixedBuilt { buildFixedTables(); fixedBuilt = true }
        try huffmanBlock(literals: fixedLiteralTable, distances: fixedDistanceTable)
      case 2:
        try readDynamicTables()
        try huffmanBlock(literals: literalTable, distances: distanceTable)
      default: throw .corrupt(offset: errorOffset)
      }
      if stopWhenFull && outPos == outputCount { return }
    }
  }

  mutating func storedBlock() throws(DecompressionError) {
    let drop = bitCount & 7
    bits &>>= UInt64(drop)
    bitCount -= drop
    refill()
    let length = try take(16)
    let complement = try take(16)
    guard length == ~complement & 0xFFFF else { throw .corrupt(offset: errorOffset - 4) }
    var remaining = length
    if remaining > outputCount - outPos {
      guard stopWhenFull else { throw .outputTooSmall(capacity: outputCount) }
      remaining = outputCount - outPos
    }
    guard let output else { return }  // nothing to copy: remaining is 0
    while remaining > 0 && bitCount >= 8 {
      output[outPos] = UInt8(truncatingIfNeeded: bits)
      bits &>>= 8
      bitCount -= 8
      outPos += 1
      remaining -= 1
    }
    guard remaining > 0 else { return }
    bits = 0  // bitCount is 0: what the buffer still holds is from bytes copied below
    guard remaining <= inputCount - inPos else { throw .truncated }
    UnsafeMutableRawPointer(output + outPos).copyMemory(from: input + inPos, byteCount: remaining)
    inPos += remaining
    outPos += remaining
  }

  mutating func buildFixedTables() {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 288) { lengths in
      for i in 0..<288 { lengths[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8 }
      _ = HuffmanTable.build(UnsafePointer(lengths.baseAddress!), count: 288, alphabet: .literalLength,
                             rootBits: HuffmanTable.literalRootBits, into: fixedLiteralTable,
                             capacity: HuffmanTable.fixedLiteralCapacity, allowIncomplete: false)
      // 32 five-bit codes, a complete set; 30 and 31 decode to invalid entries.
      for i in 0..<32 { lengths[i] = 5 }
      _ = HuffmanTable.build(UnsafePointer(lengths.baseAddress!), count: 32, alphabet: .distance,
                             rootBits: HuffmanTable.distanceRootBits, into: fixedDistanceTable,
                             capacity: HuffmanTable.fixedDistanceCapacity, allowIncomplete: false)
    }
  }

  /// Reads a dynamic block's code-length code and literal/length and distance code lengths.
  mutating func readDynamicTables() throws(DecompressionError) {
    let start = errorOffset
    refill()
    let literalCount = try take(5) + 257
    let distanceCount = try take(5) + 1
    let codeLengthCount = try take(4) + 4
    // zlib's limits: 286 literal/length and 30 distance codes.
    guard literalCount <= 286, distanceCount <= 30 else { throw .corrupt(offset: start) }
    // withUnsafeTemporaryAllocation only rethrows untyped errors before Swift 6.3 (the aarch64
    // cross build uses 6.2): the typed error leaves the closure through `failure`.
    var failure: DecompressionError? = nil
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 286 + 30) { lengths in
      do throws(DecompressionError) {
        try readCodeLengths(into: lengths.baseAddress!, start: start, literalCount: literalCount,
                            distanceCount: distanceCount, codeLengthCount: codeLengthCount)
      } catch { failure = error }
    }
    if let failure { throw failure }
  }

  /// The code-length code, then the literal/length and distance code lengths into `lengths`
  /// (room for 286 + 30), and the two tables built from them.
  private mutating func readCodeLengths(into lengths: UnsafeMutablePointer<UInt8>, start: Int, literalCount: Int,
                                        distanceCount: Int, codeLengthCount: Int) throws(DecompressionError) {
    lengths.update(repeating: 0, count: 19)
    for i in 0..<codeLengthCount {
      if i % 16 == 0 { refill() }
      lengths[HuffmanTable.codeLengthOrder[i]] = UInt8(try take(3))
    }
    guard HuffmanTable.build(lengths, count: 19, alphabet: .codeLength, rootBits: HuffmanTable.codeLengthRootBits,
                             into: codeLengthTable, capacity: HuffmanTable.codeLengthCapacity, allowIncomplete: false)
    else { throw .corrupt(offset: start) }
    let total = literalCount + distanceCount
    var i = 0
    while i < total {
      refill()
      let symbol = Int(try decode(codeLengthTable, rootBits: HuffmanTable.codeLengthRootBits) >> 16)
      if symbol < 16 {
        lengths[i] = UInt8(symbol)
        i += 1
        continue
      }
      var value: UInt8 = 0
      let repeatCount: Int
      switch symbol {
      case 16:
        guard i > 0 else { throw .corrupt(offset: errorOffset) }  // nothing to repeat
        value = lengths[i - 1]
        repeatCount = 3 + (try take(2))
      case 17: repeatCount = 3 + (try take(3))
      default: repeatCount = 11 + (try take(7))
      }
      guard repeatCount <= total - i else { throw .corrupt(offset: errorOffset) }
      (lengths + i).update(repeating: value, count: repeatCount)
      i += repeatCount
    }
    guard lengths[256] != 0 else { throw .corrupt(offset: start) }  // no end-of-block code
    guard HuffmanTable.build(lengths, count: literalCount, alphabet: .literalLength,
                             rootBits: HuffmanTable.literalRootBits, into: literalTable,
                             capacity: HuffmanTable.literalCapacity, allowIncomplete: true),
          HuffmanTable.build(lengths + literalCount, count: distanceCount, alphabet: .distance,
                             rootBits: HuffmanTable.distanceRootBits, into: distanceTable,
                             capacity: HuffmanTable.distanceCapacity, allowIncomplete: true)
    else { throw .corrupt(offset: start) }
  }

  /// Decodes one Huffman-coded block on a local copy of the state, which the compiler keeps in
  /// registers (output stores cannot alias it), written back however the block ends.
  mutating func huffmanBlock(literals: UnsafeMutablePointer<UInt32>, distances: UnsafeMutablePointer<UInt32>)
    throws(DecompressionError)
  {
    var state = self
    defer { self = state }
    try state.huffmanSymbols(literals: literals, distances: distances)
  }

  /// The symbols of a Huffman-coded block. One refill gives at least 56 bits while 8 input bytes remain,
  /// enough for a whole length/distance pair (15 + 5 + 15 + 13 bits); near the end `take` and
  /// `decode` check every read against what is left.
  @inline(__always) mutating func huffmanSymbols(literals: UnsafeMutablePointer<UInt32>,
                                                 distances: UnsafeMutablePointer<UInt32>) throws(DecompressionError)
  {
    let literalRoot = HuffmanTable.literalRootBits
    let distanceRoot = HuffmanTable.distanceRootBits
    while true {
      refill()
      let symbol = try decode(literals, rootBits: literalRoot)
      let kind = symbol & HuffmanTable.kindMask
      if kind == HuffmanTable.literal {
        guard outPos < outputCount, let output else {
          if stopWhenFull { return }
          throw .outputTooSmall(capacity: outputCount)
        }
        output[outPos] = UInt8(truncatingIfNeeded: symbol >> 16)
        outPos &+= 1
        continue
      }
      if kind == HuffmanTable.endOfBlock { return }
      var length = Int(symbol >> 16) &+ (try take(Int((symbol >> 8) & 15)))
      let d = try decode(distances, rootBits: distanceRoot)
      let distance = Int(d >> 16) &+ (try take(Int((d >> 8) & 15)))
      guard distance <= outPos else { throw .corrupt(offset: errorOffset) }  // before the start of the output
      if length > outputCount &- outPos {
        guard stopWhenFull else { throw .outputTooSmall(capacity: outputCount) }
        length = outputCount &- outPos
      }
      guard let output else { return }  // distance <= outPos == 0 was rejected: unreachable
      // Bounds proved above: [outPos - distance, outPos + length) lies inside the output.
      let destination = output + outPos
      let source = destination - distance
      if distance >= length {
        if length >= 32 {
          UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: length)
        } else {
          for i in 0..<length { destination[i] = source[i] }
        }
      } else {
        for i in 0..<length { destination[i] = source[i] }  // overlapping: repeats the last `distance` bytes
      }
      outPos &+= length
      if stopWhenFull && outPos == outputCount { return }
    }
  }
}
