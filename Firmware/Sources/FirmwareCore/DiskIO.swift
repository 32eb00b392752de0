/// Why a Disk IO byte range cannot be read.
public enum DiskIORangeError: Error, Equatable {
  /// The range ends beyond the media (or its end does not fit in 64 bits).
  case beyondMedia(offset: UInt64, length: UInt64, mediaSize: UInt64)
  /// A block size of zero (no Block IO device has one).
  case zeroBlockSize
}

/// How EFI_DISK_IO_PROTOCOL.ReadDisk (UEFI 2.10 §13.7) reads a byte range through Block IO,
/// which reads whole blocks only: an unaligned head and tail each through one bounced block,
/// the whole blocks between them straight into the caller's buffer.
public struct DiskIORange: Equatable {
  /// Part of one block, read into a bounce buffer and copied out.
  public struct Partial: Equatable {
    public var lba: UInt64
    /// Where the wanted bytes start inside the block.
    public var offsetInBlock: UInt64
    public var count: UInt64
    /// Where they go in the caller's buffer.
    public var bufferOffset: UInt64
    public init(lba: UInt64, offsetInBlock: UInt64, count: UInt64, bufferOffset: UInt64) {
      self.lba = lba
      self.offsetInBlock = offsetInBlock
      self.count = count
      self.bufferOffset = bufferOffset
    }
  }
  /// Whole blocks read straight into the caller's buffer.
  public struct Whole: Equatable {
    public var lba: UInt64
    public var blocks: UInt64
    public var bufferOffset: UInt64
    public init(lba: UInt64, blocks: UInt64, bufferOffset: UInt64) {
      self.lba = lba
      self.blocks = blocks
      self.bufferOffset = bufferOffset
    }
  }

  /// The partial first block (nil when the range starts on a block boundary).
  public var head: Partial?
  public var whole: Whole?
  /// The partial last block (nil when the range ends on a block boundary or inside `head`).
  public var tail: Partial?

  public init(head: Partial?, whole: Whole?, tail: Partial?) {
    self.head = head
    self.whole = whole
    self.tail = tail
  }

  /// Splits `length` bytes at byte `offset` of a medium of `mediaBlocks` blocks of `blockSize`
  /// bytes. A zero length is an empty plan (nothing to read), wherever it is.
  public init(offset: UInt64, length: UInt64, blockSize: UInt32, mediaBlocks: UInt64) throws(DiskIORangeError) {
    guard blockSize > 0 else { throw .zeroBlockSize }
    guard length > 0 else { return }
    let size = UInt64(blockSize)
    let (mediaSize, mediaOverflow) = mediaBlocks.multipliedReportingOverflow(by: size)
    let (end, endOverflow) = offset.addingReportingOverflow(length)
    guard !endOverflow, mediaOverflow || end <= mediaSize else {
      throw .beyondMedia(offset: offset, length: length, mediaSize: mediaOverflow ? .max : mediaSize)
    }
    var position = offset
    if offset % size != 0 {
      let (nextBoundary, overflow) = (offset - offset % size).addingReportingOverflow(size)
      let headEnd = overflow ? end : min(end, nextBoundary)
      head = Partial(lba: offset / size, offsetInBlock: offset % size, count: headEnd - offset, bufferOffset: 0)
      position = headEnd
    }
    let wholeEnd = max(position, end / size * size)
    if wholeEnd > position {
      whole = Whole(lba: position / size, blocks: (wholeEnd - position) / size, bufferOffset: position - offset)
    }
    if end > wholeEnd {
      tail = Partial(lba: wholeEnd / size, offsetInBlock: 0, count: end - wholeEnd, bufferOffset: wholeEnd - offset)
    }
  }

  /// Nothing to read (a zero-length request).
  public var isEmpty: Bool { head == nil && whole == nil && tail == nil }
}
