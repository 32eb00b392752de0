import GuestMemory

/// Reads a chain's device-readable buffers in order, as one byte stream over guest memory (as
/// rust-vmm's virtio-queue `Reader`): a device never indexes descriptors or iovecs itself.
/// Device-writable descriptors are skipped; a buffer outside guest RAM ends the stream there.
public struct DescriptorChainReader {
  private let memory: GuestMemory
  private var buffers: ArraySlice<VirtqDescriptor>
  /// Bytes already taken from the first buffer left.
  private var offset: UInt32 = 0

  public init(_ chain: DescriptorChain, memory: GuestMemory) {
    self.memory = memory
    buffers = chain.descriptors.filter { !$0.isWritable && $0.length > 0 }[...]
  }

  /// Device-readable bytes left (as the descriptors state them; a buffer outside RAM still counts).
  public var remaining: UInt64 {
    buffers.reduce(0) { $0 + UInt64($1.length) } - UInt64(offset)
  }

  /// The next piece of the stream, at most `limit` bytes, in place in guest memory; nil at the end
  /// or at a buffer outside guest RAM.
  public mutating func next(limit: Int) -> UnsafeRawBufferPointer? {
    guard limit > 0, let buffer = buffers.first else { return nil }
    let count = min(Int(buffer.length - offset), limit)
    guard let piece = try? memory.slice(at: buffer.address &+ UInt64(offset), count: count) else {
      buffers = []
      return nil
    }
    advance(by: UInt32(count))
    return UnsafeRawBufferPointer(piece)
  }

  /// Fills `destination` from the stream; returns how many bytes it held (fewer at its end).
  public mutating func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
    var filled = 0
    while filled < destination.count, let piece = next(limit: destination.count - filled) {
      UnsafeMutableRawBufferPointer(rebasing: destination[filled...]).copyMemory(from: piece)
      filled += piece.count
    }
    return filled
  }

  private mutating func advance(by count: UInt32) {
    offset += count
    if offset == buffers.first?.length {
      buffers = buffers.dropFirst()
      offset = 0
    }
  }
}

/// Writes into a chain's device-writable buffers in order, as one byte stream over guest memory
/// (rust-vmm's `Writer`). Device-readable descriptors are skipped; a buffer outside guest RAM
/// ends the stream there. ``written`` is the used length to return with the chain.
public struct DescriptorChainWriter {
  private let memory: GuestMemory
  private var buffers: ArraySlice<VirtqDescriptor>
  private var offset: UInt32 = 0
  /// Bytes written so far.
  public private(set) var written: UInt32 = 0

  public init(_ chain: DescriptorChain, memory: GuestMemory) {
    self.memory = memory
    buffers = chain.descriptors.filter { $0.isWritable && $0.length > 0 }[...]
  }

  /// Device-writable room left (as the descriptors state it).
  public var remaining: UInt64 {
    buffers.reduce(0) { $0 + UInt64($1.length) } - UInt64(offset)
  }

  /// Hands `body` the next piece of writable guest memory, at most `limit` bytes; `body` returns
  /// how many bytes it filled (from the start). Returns that count: 0 at the end of the stream.
  public mutating func fill(limit: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
    guard limit > 0, let buffer = buffers.first, written < UInt32.max else { return 0 }
    let count = min(Int(buffer.length - offset), limit, Int(UInt32.max - written))
    guard let piece = try? memory.slice(at: buffer.address &+ UInt64(offset), count: count) else {
      buffers = []
      return 0
    }
    let filled = max(0, min(body(piece), count))
    offset += UInt32(filled)
    written += UInt32(filled)
    if offset == buffer.length {
      buffers = buffers.dropFirst()
      offset = 0
    }
    return filled
  }

  /// Writes as much of `bytes` as there is room for; returns how many bytes that was.
  @discardableResult
  public mutating func write(_ bytes: UnsafeRawBufferPointer) -> Int {
    var done = 0
    while done < bytes.count {
      let count = fill(limit: bytes.count - done) { piece in
        piece.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[done..<(done + piece.count)]))
        return piece.count
      }
      if count == 0 { break }
      done += count
    }
    return done
  }

  /// Writes as much of `bytes` as there is room for; returns how many bytes that was.
  @discardableResult
  public mutating func write(_ bytes: some Collection<UInt8>) -> Int {
    let copied = bytes.withContiguousStorageIfAvailable { write(UnsafeRawBufferPointer($0)) }
    if let copied { return copied }
    return Array(bytes).withUnsafeBytes { write($0) }
  }
}
