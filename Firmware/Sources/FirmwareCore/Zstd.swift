/// Why a Zstandard stream could not be decompressed.
public enum ZstdError: Error, Equatable, Sendable {
  /// The input ends inside a frame (or is empty).
  case truncatedInput
  /// The input is not valid Zstandard: `what` is wrong in the structure that starts at input
  /// offset `offset` (a frame, block, literals or sequences section, or table description).
  case corruptData(offset: Int, what: Defect)
  /// The decompressed data does not fit in the output buffer.
  case outputTooSmall
  /// A frame's content checksum (the low 32 bits of XXH64) differs from that of its decompressed data.
  case checksumMismatch(expected: UInt32, computed: UInt32)
  /// Valid Zstandard that this decoder does not handle.
  case unsupported(Feature)

  /// The part of a stream found invalid.
  public enum Defect: Equatable, Sendable {
    /// Neither a Zstandard frame's magic number nor a skippable frame's.
    case badMagic
    /// A reserved bit is set (frame header descriptor, sequence compression modes).
    case reservedBit
    /// The reserved block type 3.
    case blockType
    /// A block larger than its frame's maximum (the smaller of the window and 128 KiB), compressed or decompressed.
    case blockSize
    /// The frame decompressed to other than its declared content size.
    case contentSize
    /// A literals section header or its stream sizes.
    case literalsSection
    /// A Huffman tree description.
    case huffmanTable
    /// A Huffman-coded literals stream.
    case huffmanStream
    /// An FSE table description.
    case fseTable
    /// A sequences section: its header, a repeat mode with no table, or its bitstream.
    case sequencesSection
    /// A sequence that takes more literals than the block decoded.
    case literalsOverrun
    /// A match offset of zero, or reaching before the frame's start or beyond its window.
    case offset
  }

  /// Zstandard features this decoder rejects.
  public enum Feature: Equatable, Sendable {
    /// A frame that needs a dictionary (non-zero dictionary id).
    case dictionary(UInt32)
    /// Input of skippable frames only: no data at all.
    case noDataFrame
  }
}

/// A Zstandard (RFC 8878) decoder for whole buffers: the firmware unpacks EFI zboot kernels
/// whose payload Linux compresses with `zstd -22 --ultra`.
///
/// The output buffer is the window: a match may reach back to anything its frame has written,
/// up to the frame's window size, so no separate window is allocated whatever the frame
/// declares (zboot's 128 MiB windows included). Nothing is written past `output.count`.
public enum Zstd {
  static let frameMagic: UInt32 = 0xFD2F_B528
  static let blockSizeLimit = 128 * 1024

  /// Decompresses every frame of `input` (skippable frames are skipped) into `output`, and
  /// returns the number of bytes written. Frames with a content checksum are verified.
  public static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
    throws(ZstdError) -> Int
  {
    guard let inputBase = input.baseAddress, input.count > 0 else { throw .truncatedInput }
    let decoder = ZstdDecoder(input: inputBase.assumingMemoryBound(to: UInt8.self), inputCount: input.count,
                              output: output)
    var position = 0
    var written = 0
    var frames = 0
    while position < input.count {
      guard let magic = input.le32(at: position) else { throw .truncatedInput }
      if let next = try skipSkippableFrame(input, at: position, magic: magic) {
        position = next
        continue
      }
      guard magic == frameMagic else { throw .corruptData(offset: position, what: .badMagic) }
      (position, written) = try decoder.decodeFrame(at: position, outputAt: written)
      frames += 1
    }
    guard frames > 0 else { throw .unsupported(.noDataFrame) }
    return written
  }

  /// The content size the first Zstandard frame of `input` declares (skippable frames before it
  /// are skipped), or nil when it does not declare one.
  public static func frameContentSize(_ input: UnsafeRawBufferPointer) throws(ZstdError) -> UInt64? {
    var position = 0
    while true {
      if position > 0, position == input.count { throw .unsupported(.noDataFrame) }
      guard let magic = input.le32(at: position) else { throw .truncatedInput }
      if let next = try skipSkippableFrame(input, at: position, magic: magic) {
        position = next
        continue
      }
      guard magic == frameMagic else { throw .corruptData(offset: position, what: .badMagic) }
      return try ZstdFrameHeader(input, at: position).contentSize
    }
  }

  /// The offset past the skippable frame at `position`, or nil when `magic` is not a skippable frame's.
  static func skipSkippableFrame(_ input: UnsafeRawBufferPointer, at position: Int, magic: UInt32)
    throws(ZstdError) -> Int?
  {
    guard magic & 0xFFFF_FFF0 == 0x184D_2A50 else { return nil }
    guard let size = input.le32(at: position + 4), Int(size) <= input.count - position - 8 else {
      throw .truncatedInput
    }
    return position + 8 + Int(size)
  }
}

/// A Zstandard frame header (RFC 8878 §3.1.1.1).
struct ZstdFrameHeader {
  /// Magic number included.
  var size: Int
  var windowSize: UInt64
  var contentSize: UInt64?
  var hasChecksum: Bool

  init(_ input: UnsafeRawBufferPointer, at start: Int) throws(ZstdError) {
    var p = start + 4
    guard let descriptor = input.byte(at: p) else { throw .truncatedInput }
    p += 1
    guard descriptor & 0x08 == 0 else { throw .corruptData(offset: start, what: .reservedBit) }
    let singleSegment = descriptor & 0x20 != 0
    hasChecksum = descriptor & 0x04 != 0
    windowSize = 0
    if !singleSegment {
      guard let window = input.byte(at: p) else { throw .truncatedInput }
      p += 1
      let log = 10 + UInt64(window >> 3)
      let base: UInt64 = 1 << log
      windowSize = base + (base >> 3) * UInt64(window & 7)
    }
    let dictionaryIDSize = [0, 1, 2, 4][Int(descriptor & 3)]
    if dictionaryIDSize > 0 {
      guard let id = input.unsignedInteger(at: p, width: dictionaryIDSize) else { throw .truncatedInput }
      guard id == 0 else { throw .unsupported(.dictionary(UInt32(id))) }
      p += dictionaryIDSize
    }
    let flag = Int(descriptor >> 6)
    let contentSizeSize = flag == 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][flag]
    contentSize = nil
    if contentSizeSize > 0 {
      guard let value = input.unsignedInteger(at: p, width: contentSizeSize) else { throw .truncatedInput }
      contentSize = contentSizeSize == 2 ? value + 256 : value
      p += contentSizeSize
    }
    if singleSegment { windowSize = contentSize ?? 0 }
    size = p - start
  }
}

/// The decoding state of one `Zstd.decompress` call: the input and output, the entropy tables
/// (allocated once, rebuilt per block or repeated within a frame) and the repeat offsets.
final class ZstdDecoder {
  let input: UnsafePointer<UInt8>
  let inputCount: Int
  let output: UnsafeMutablePointer<UInt8>
  let outputCount: Int
  let ownsOutput: Bool
  let scratch = ZstdEntropyScratch()
  var literalLengths = ZstdFSETable(capacityLog: 9)
  var matchLengths = ZstdFSETable(capacityLog: 9)
  var offsets = ZstdFSETable(capacityLog: 8)
  var huffmanWeights = ZstdFSETable(capacityLog: 6)
  var huffman = ZstdHuffmanTable()
  let literalBuffer: UnsafeMutablePointer<UInt8>
  var repeatOffsets = (1, 4, 8)
  /// The output offset of the current frame's first byte: matches never reach before it.
  var frameStart = 0
  var windowSize = 0
  var blockMaximum = 0

  init(input: UnsafePointer<UInt8>, inputCount: Int, output: UnsafeMutableRawBufferPointer) {
    self.input = input
    self.inputCount = inputCount
    if let base = output.baseAddress {
      self.output = base.assumingMemoryBound(to: UInt8.self)
      ownsOutput = false
    } else {
      self.output = .allocate(capacity: 1)  // an empty buffer: nothing is ever written to it
      ownsOutput = true
    }
    outputCount = output.count
    literalBuffer = .allocate(capacity: Zstd.blockSizeLimit)
  }

  deinit {
    if ownsOutput { output.deallocate() }
    literalBuffer.deallocate()
    literalLengths.deallocate()
    matchLengths.deallocate()
    offsets.deallocate()
    huffmanWeights.deallocate()
    huffman.deallocate()
  }

  /// Decodes the frame at input offset `start` into the output at `outputStart`; returns the
  /// input offset past the frame and the output offset past its data.
  func decodeFrame(at start: Int, outputAt outputStart: Int) throws(ZstdError) -> (Int, Int) {
    let raw = UnsafeRawBufferPointer(start: input, count: inputCount)
    let header = try ZstdFrameHeader(raw, at: start)
    if let size = header.contentSize, size > UInt64(outputCount - outputStart) { throw .outputTooSmall }
    frameStart = outputStart
    windowSize = Int(min(header.windowSize, UInt64(Int.max)))
    blockMaximum = min(windowSize, Zstd.blockSizeLimit)
    repeatOffsets = (1, 4, 8)
    literalLengths.isBuilt = false
    matchLengths.isBuilt = false
    offsets.isBuilt = false
    huffman.isBuilt = false

    var p = start + header.size
    var op = outputStart
    while true {
      guard let blockHeader = raw.unsignedInteger(at: p, width: 3) else { throw .truncatedInput }
      let blockStart = p
      p += 3
      let isLast = blockHeader & 1 != 0
      let type = Int((blockHeader >> 1) & 3)
      let size = Int(blockHeader >> 3)
      guard type != 3 else { throw .corruptData(offset: blockStart, what: .blockType) }
      guard size <= blockMaximum else { throw .corruptData(offset: blockStart, what: .blockSize) }
      switch type {
      case 0:  // raw
        guard size <= inputCount - p else { throw .truncatedInput }
        guard size <= outputCount - op else { throw .outputTooSmall }
        UnsafeMutableRawPointer(output + op).copyMemory(from: input + p, byteCount: size)
        p += size
        op += size
      case 1:  // RLE: one byte, `size` times
        guard p < inputCount else { throw .truncatedInput }
        guard size <= outputCount - op else { throw .outputTooSmall }
        (output + op).update(repeating: input[p], count: size)
        p += 1
        op += size
      default:
        guard size <= inputCount - p else { throw .truncatedInput }
        op = try decodeCompressedBlock(at: p, end: p + size, outputAt: op)
        p += size
      }
      if isLast { break }
    }
    if let size = header.contentSize, UInt64(op - outputStart) != size {
      throw .corruptData(offset: start, what: .contentSize)
    }
    if header.hasChecksum {
      guard let expected = raw.le32(at: p) else { throw .truncatedInput }
      p += 4
      let computed = UInt32(truncatingIfNeeded: XXH64.hash(
        UnsafeRawBufferPointer(start: output + outputStart, count: op - outputStart)))
      guard computed == expected else { throw .checksumMismatch(expected: expected, computed: computed) }
    }
    return (p, op)
  }

  /// The error for a block that needs `needed` more bytes at output offset `op`: beyond the
  /// block's maximum it is corrupt, otherwise the output buffer is too small.
  func overrun(needing needed: Int, at op: Int, blockStart: Int, blockOutput: Int) -> ZstdError {
    if op - blockOutput + needed > blockMaximum { return .corruptData(offset: blockStart, what: .blockSize) }
    return .outputTooSmall
  }

  /// Decodes the compressed block `input[start..<end]` to output offset `outputStart`; returns
  /// the output offset past its data.
  func decodeCompressedBlock(at start: Int, end: Int, outputAt outputStart: Int) throws(ZstdError) -> Int {
    let (literals, literalCount, sequencesStart) = try decodeLiterals(at: start, end: end)
    let limit = outputStart + min(blockMaximum, outputCount - outputStart)
    var p = sequencesStart
    let corrupt = ZstdError.corruptData(offset: sequencesStart, what: .sequencesSection)
    guard p < end else { throw corrupt }
    var count = Int(input[p])
    p += 1
    if count == 0 {
      guard p == end else { throw corrupt }
      guard literalCount <= limit - outputStart else {
        throw overrun(needing: literalCount, at: outputStart, blockStart: start, blockOutput: outputStart)
      }
      UnsafeMutableRawPointer(output + outputStart).copyMemory(from: literals, byteCount: literalCount)
      return outputStart + literalCount
    }
    if count >= 128 {
      if count < 255 {
        guard p < end else { throw corrupt }
        count = ((count - 128) << 8) + Int(input[p])
        p += 1
      } else {
        guard end - p >= 2 else { throw corrupt }
        count = Int(input[p]) + Int(input[p + 1]) << 8 + 0x7F00
        p += 2
      }
    }
    guard p < end else { throw corrupt }
    let modes = Int(input[p])
    p += 1
    guard modes & 3 == 0 else { throw ZstdError.corruptData(offset: sequencesStart, what: .reservedBit) }
    p = try prepare(&literalLengths, mode: modes >> 6, kind: .literalLength, at: p, end: end)
    p = try prepare(&offsets, mode: (modes >> 4) & 3, kind: .offset, at: p, end: end)
    p = try prepare(&matchLengths, mode: (modes >> 2) & 3, kind: .matchLength, at: p, end: end)
    guard var bits = ZstdBackwardBits(start: input + p, length: end - p) else { throw corrupt }

    let llCells = literalLengths.cells
    let mlCells = matchLengths.cells
    let ofCells = offsets.cells
    var llState = Int(bits.read(literalLengths.accuracyLog))
    bits.refill()
    var ofState = Int(bits.read(offsets.accuracyLog))
    bits.refill()
    var mlState = Int(bits.read(matchLengths.accuracyLog))
    var (rep0, rep1, rep2) = repeatOffsets
    let frameStart = self.frameStart
    let window = windowSize
    var literal = literals
    let literalEnd = literals + literalCount
    var op = outputStart
    var remaining = count
    while remaining > 0 {
      remaining -= 1
      let llCell = llCells[llState]
      let mlCell = mlCells[mlState]
      let ofCell = ofCells[ofState]
      bits.refill()
      let offsetValue = ZstdFSETable.baseValue(ofCell) + Int(bits.read(ZstdFSETable.extraBits(ofCell)))
      bits.refill()
      let matchLength = ZstdFSETable.baseValue(mlCell) + Int(bits.read(ZstdFSETable.extraBits(mlCell)))
      let literalLength = ZstdFSETable.baseValue(llCell) + Int(bits.read(ZstdFSETable.extraBits(llCell)))
      // Offsets 1-3 are repeat codes (RFC 8878 §3.1.1.5), shifted by one when there are no literals.
      let offset: Int
      if offsetValue > 3 {
        offset = offsetValue - 3
        rep2 = rep1
        rep1 = rep0
        rep0 = offset
      } else {
        switch offsetValue - (literalLength == 0 ? 0 : 1) {
        case 0:
          offset = rep0
        case 1:
          offset = rep1
          rep1 = rep0
          rep0 = offset
        case 2:
          offset = rep2
          rep2 = rep1
          rep1 = rep0
          rep0 = offset
        default:
          offset = rep0 - 1
          rep2 = rep1
          rep1 = rep0
          rep0 = offset
        }
      }
      if remaining > 0 {
        bits.refill()
        llState = ZstdFSETable.nextStateBase(llCell) + Int(bits.read(ZstdFSETable.stateBits(llCell)))
        mlState = ZstdFSETable.nextStateBase(mlCell) + Int(bits.read(ZstdFSETable.stateBits(mlCell)))
        ofState = ZstdFSETable.nextStateBase(ofCell) + Int(bits.read(ZstdFSETable.stateBits(ofCell)))
      }
      guard literalLength <= literalEnd - literal else {
        throw ZstdError.corruptData(offset: sequencesStart, what: .literalsOverrun)
      }
      guard literalLength + matchLength <= limit - op else {
        throw overrun(needing: literalLength + matchLength, at: op, blockStart: start, blockOutput: outputStart)
      }
      Self.copyForward(to: output + op, from: literal, count: literalLength)
      literal += literalLength
      op += literalLength
      guard offset >= 1, offset <= op - frameStart, offset <= window else {
        throw ZstdError.corruptData(offset: sequencesStart, what: .offset)
      }
      Self.copyMatch(to: output + op, offset: offset, length: matchLength)
      op += matchLength
    }
    guard bits.isExactlyConsumed else { throw corrupt }
    repeatOffsets = (rep0, rep1, rep2)
    let rest = literalEnd - literal
    guard rest <= limit - op else { throw overrun(needing: rest, at: op, blockStart: start, blockOutput: outputStart) }
    UnsafeMutableRawPointer(output + op).copyMemory(from: literal, byteCount: rest)
    return op + rest
  }

  /// Copies a match of `length` bytes from `offset` bytes back; the two may overlap (a short
  /// offset repeats a pattern).
  @inline(__always) static func copyMatch(to destination: UnsafeMutablePointer<UInt8>, offset: Int, length: Int) {
    let source = UnsafePointer(destination - offset)
    if offset >= 8 {
      copyForward(to: destination, from: source, count: length)
    } else {
      // Write one period, repeated to at least 8 bytes, byte by byte; the rest repeats it from
      // that many bytes back, 8 at a time.
      let period = offset * ((8 + offset - 1) / offset)
      let head = min(period, length)
      for i in 0..<head { destination[i] = source[i] }
      if length > head {
        copyForward(to: destination + head, from: UnsafePointer(destination + head - period), count: length - head)
      }
    }
  }

  /// Copies `count` bytes forwards, 8 at a time: right when the source is elsewhere or at least 8
  /// bytes behind (each step then reads only bytes already written). Most literal runs and
  /// matches are short, where this beats a call to memmove.
  @inline(__always) static func copyForward(to destination: UnsafeMutablePointer<UInt8>, from source: UnsafePointer<UInt8>,
                                            count: Int) {
    if count >= 64, source + count <= destination || destination + count <= source {
      UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count)
      return
    }
    var i = 0
    while i + 8 <= count {
      let word = UnsafeRawPointer(source + i).loadUnaligned(as: UInt64.self)
      UnsafeMutableRawPointer(destination + i).storeBytes(of: word, as: UInt64.self)
      i += 8
    }
    while i < count {
      destination[i] = source[i]
      i += 1
    }
  }

  /// Sets up one sequence table for its compression mode (RFC 8878 §3.1.1.3.2.1); returns the
  /// offset past the table's description.
  func prepare(_ table: inout ZstdFSETable, mode: Int, kind: ZstdSymbolKind, at start: Int, end: Int)
    throws(ZstdError) -> Int
  {
    switch mode {
    case 0:
      table.buildPredefined(kind: kind, scratch: scratch)
      return start
    case 1:
      guard start < end, Int(input[start]) <= kind.maxSymbol else {
        throw .corruptData(offset: start, what: .sequencesSection)
      }
      table.buildRLE(symbol: Int(input[start]), kind: kind)
      return start + 1
    case 2:
      return try table.read(base: input, start: start, end: end, kind: kind, scratch: scratch)
    default:
      guard table.isBuilt else { throw .corruptData(offset: start, what: .sequencesSection) }
      return start
    }
  }

  /// Decodes the literals section at `start` (RFC 8878 §3.1.1.3.1); returns the literals (in
  /// the input for raw literals, else in `literalBuffer`), their count and the offset past the section.
  func decodeLiterals(at start: Int, end: Int) throws(ZstdError) -> (UnsafePointer<UInt8>, Int, Int) {
    let corrupt = ZstdError.corruptData(offset: start, what: .literalsSection)
    guard start < end else { throw corrupt }
    let b0 = Int(input[start])
    let type = b0 & 3
    let format = (b0 >> 2) & 3
    if type < 2 {
      let headerSize = format == 1 ? 2 : format == 3 ? 3 : 1
      guard headerSize <= end - start else { throw corrupt }
      let size: Int
      switch format {
      case 1: size = b0 >> 4 + Int(input[start + 1]) << 4
      case 3: size = b0 >> 4 + Int(input[start + 1]) << 4 + Int(input[start + 2]) << 12
      default: size = b0 >> 3
      }
      guard size <= blockMaximum else { throw corrupt }
      let data = start + headerSize
      if type == 0 {
        guard size <= end - data else { throw corrupt }
        return (UnsafePointer(input + data), size, data + size)
      }
      guard data < end else { throw corrupt }
      literalBuffer.update(repeating: input[data], count: size)
      return (UnsafePointer(literalBuffer), size, data + 1)
    }
    let headerSize = format < 2 ? 3 : format + 2
    guard headerSize <= end - start else { throw corrupt }
    var header = 0
    for i in 0..<headerSize { header |= Int(input[start + i]) << (8 * i) }
    let sizeBits = format < 2 ? 10 : format == 2 ? 14 : 18
    let mask = (1 << sizeBits) - 1
    let size = (header >> 4) & mask
    let compressedSize = (header >> (4 + sizeBits)) & mask
    guard size <= blockMaximum, compressedSize <= end - start - headerSize else { throw corrupt }
    var p = start + headerSize
    let compressedEnd = p + compressedSize
    if type == 2 {
      p = try huffman.read(base: input, start: p, end: compressedEnd, weightTable: &huffmanWeights, scratch: scratch)
    } else {
      guard huffman.isBuilt else { throw ZstdError.corruptData(offset: start, what: .huffmanTable) }
    }
    if format == 0 {
      try huffman.decodeStream(base: input, start: p, end: compressedEnd, into: literalBuffer, count: size)
    } else {
      // Four streams after a jump table of the first three's sizes; each decodes a quarter.
      guard compressedEnd - p >= 6 else { throw corrupt }
      let size1 = Int(input[p]) | Int(input[p + 1]) << 8
      let size2 = Int(input[p + 2]) | Int(input[p + 3]) << 8
      let size3 = Int(input[p + 4]) | Int(input[p + 5]) << 8
      let first = p + 6
      let segment = (size + 3) / 4
      guard size1 + size2 + size3 <= compressedEnd - first, size - 3 * segment >= 0 else { throw corrupt }
      let second = first + size1
      let third = second + size2
      let fourth = third + size3
      try huffman.decodeStream(base: input, start: first, end: second, into: literalBuffer, count: segment)
      try huffman.decodeStream(base: input, start: second, end: third, into: literalBuffer + segment, count: segment)
      try huffman.decodeStream(base: input, start: third, end: fourth, into: literalBuffer + 2 * segment,
                               count: segment)
      try huffman.decodeStream(base: input, start: fourth, end: compressedEnd, into: literalBuffer + 3 * segment,
                               count: size - 3 * segment)
    }
    return (UnsafePointer(literalBuffer), size, compressedEnd)
  }
}
