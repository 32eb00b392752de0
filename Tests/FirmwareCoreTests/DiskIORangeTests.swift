import Testing
import FirmwareCore

/// EFI_DISK_IO_PROTOCOL's byte range → Block IO blocks: what ReadDisk reads and where it copies.
@Suite struct DiskIORangeTests {
  typealias Partial = DiskIORange.Partial
  typealias Whole = DiskIORange.Whole

  func range(_ offset: UInt64, _ length: UInt64, blocks: UInt64 = 100, blockSize: UInt32 = 512) throws(DiskIORangeError) -> DiskIORange {
    try DiskIORange(offset: offset, length: length, blockSize: blockSize, mediaBlocks: blocks)
  }

  /// Reads `length` bytes at `offset` of `disk` the way ReadDisk does with the plan: the bytes
  /// must be exactly the disk's.
  func readThroughPlan(_ disk: [UInt8], offset: Int, length: Int, blockSize: Int) throws -> [UInt8] {
    let plan = try DiskIORange(offset: UInt64(offset), length: UInt64(length), blockSize: UInt32(blockSize),
                               mediaBlocks: UInt64(disk.count / blockSize))
    var out = [UInt8](repeating: 0xEE, count: length)
    func block(_ lba: UInt64) -> ArraySlice<UInt8> { disk[Int(lba) * blockSize..<(Int(lba) + 1) * blockSize] }
    for p in [plan.head, plan.tail].compactMap({ $0 }) {
      let b = Array(block(p.lba))
      out.replaceSubrange(Int(p.bufferOffset)..<Int(p.bufferOffset + p.count),
                          with: b[Int(p.offsetInBlock)..<Int(p.offsetInBlock + p.count)])
    }
    if let w = plan.whole {
      out.replaceSubrange(Int(w.bufferOffset)..<Int(w.bufferOffset) + Int(w.blocks) * blockSize,
                          with: disk[Int(w.lba) * blockSize..<Int(w.lba + w.blocks) * blockSize])
    }
    return out
  }

  @Test func alignedRangeIsWholeBlocksOnly() throws {
    #expect(try range(1024, 1536) == DiskIORange(head: nil, whole: Whole(lba: 2, blocks: 3, bufferOffset: 0), tail: nil))
  }

  @Test func unalignedHeadAndTailAroundWholeBlocks() throws {
    // Offset 3, 1000 bytes: 509 from block 0, then 491 from block 1 (no whole block between).
    #expect(try range(3, 1000) == DiskIORange(
      head: Partial(lba: 0, offsetInBlock: 3, count: 509, bufferOffset: 0), whole: nil,
      tail: Partial(lba: 1, offsetInBlock: 0, count: 491, bufferOffset: 509)))
    // Offset 700, 2000 bytes: 324 from block 1, blocks 2–4 whole, 140 from block 5.
    #expect(try range(700, 2000) == DiskIORange(
      head: Partial(lba: 1, offsetInBlock: 188, count: 324, bufferOffset: 0),
      whole: Whole(lba: 2, blocks: 3, bufferOffset: 324),
      tail: Partial(lba: 5, offsetInBlock: 0, count: 140, bufferOffset: 1860)))
  }

  @Test func rangeInsideOneBlock() throws {
    #expect(try range(515, 10) == DiskIORange(head: Partial(lba: 1, offsetInBlock: 3, count: 10, bufferOffset: 0),
                                              whole: nil, tail: nil))
    // Starts on a boundary, shorter than a block: a tail only.
    #expect(try range(512, 10) == DiskIORange(head: nil, whole: nil,
                                              tail: Partial(lba: 1, offsetInBlock: 0, count: 10, bufferOffset: 0)))
    // Ends exactly on the boundary.
    #expect(try range(500, 12) == DiskIORange(head: Partial(lba: 0, offsetInBlock: 500, count: 12, bufferOffset: 0),
                                              whole: nil, tail: nil))
  }

  @Test func crossingOneBoundary() throws {
    #expect(try range(500, 30) == DiskIORange(
      head: Partial(lba: 0, offsetInBlock: 500, count: 12, bufferOffset: 0), whole: nil,
      tail: Partial(lba: 1, offsetInBlock: 0, count: 18, bufferOffset: 12)))
  }

  @Test func zeroLengthIsEmptyAnywhere() throws {
    #expect(try range(3, 0).isEmpty)
    #expect(try range(100 * 512, 0).isEmpty)
    #expect(try range(.max, 0).isEmpty)
  }

  @Test func theMediaEndIsTheLimit() throws {
    // The last byte, the last 10 bytes: fine; one byte more is refused.
    #expect(try range(100 * 512 - 1, 1).head == Partial(lba: 99, offsetInBlock: 511, count: 1, bufferOffset: 0))
    #expect(try range(100 * 512 - 10, 10).head?.lba == 99)
    #expect(try range(0, 100 * 512).whole == Whole(lba: 0, blocks: 100, bufferOffset: 0))
    #expect(throws: DiskIORangeError.beyondMedia(offset: 100 * 512 - 10, length: 11, mediaSize: 100 * 512)) {
      try range(100 * 512 - 10, 11)
    }
    #expect(throws: DiskIORangeError.beyondMedia(offset: 100 * 512, length: 1, mediaSize: 100 * 512)) {
      try range(100 * 512, 1)
    }
    #expect(throws: DiskIORangeError.beyondMedia(offset: 0, length: 1, mediaSize: 0)) { try range(0, 1, blocks: 0) }
  }

  @Test func overflowingRangesAreRefused() throws {
    // offset + length wraps past 2^64: it must not pass as a small end.
    #expect(throws: DiskIORangeError.self) { try range(.max - 15, 32) }
    #expect(throws: DiskIORangeError.self) { try range(512, .max) }
    #expect(throws: DiskIORangeError.self) { try range(.max, 1, blocks: .max) }
    // A media size that overflows 64 bits bounds nothing, yet the sum still must not wrap.
    let huge = try range(.max - 600, 600, blocks: .max)
    #expect(huge.head?.count == 89 && huge.whole == nil && huge.tail?.count == 511)
    #expect(throws: DiskIORangeError.zeroBlockSize) { try range(0, 1, blockSize: 0) }
  }

  @Test func otherBlockSizes() throws {
    #expect(try range(4095, 4098, blockSize: 4096) == DiskIORange(
      head: Partial(lba: 0, offsetInBlock: 4095, count: 1, bufferOffset: 0),
      whole: Whole(lba: 1, blocks: 1, bufferOffset: 1),
      tail: Partial(lba: 2, offsetInBlock: 0, count: 1, bufferOffset: 4097)))
  }

  @Test func everyRangeOfASmallDiskReadsTheDisksBytes() throws {
    let blockSize = 16
    let disk = (0..<(6 * blockSize)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    for offset in 0...disk.count {
      for length in 0...(disk.count - offset) {
        let read = try readThroughPlan(disk, offset: offset, length: length, blockSize: blockSize)
        #expect((read == Array(disk[offset..<offset + length])) == true, "offset \(offset) length \(length)")
      }
    }
  }
}
