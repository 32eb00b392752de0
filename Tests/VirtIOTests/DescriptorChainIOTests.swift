import GuestMemory
import Testing
import VirtIO

/// The chain reader and writer: one byte stream over a chain's buffers of one direction, in order,
/// ending at the first buffer outside guest RAM.
@Suite struct DescriptorChainIOTests {
  let memory = try! GuestMemory(ranges: [(0x1000, 0x4000)])

  func chain(_ descriptors: [(UInt64, UInt32, Bool)]) -> DescriptorChain {
    DescriptorChain(head: 0, descriptors: descriptors.map { VirtqDescriptor(address: $0.0, length: $0.1, isWritable: $0.2) })
  }

  @Test func readerStreamsTheReadableBuffersInOrder() throws {
    try memory.write(Array("hello, ".utf8), at: 0x1000)
    try memory.write(Array("world".utf8), at: 0x2000)
    let descriptors = chain([(0x1000, 7, false), (0x3000, 8, true), (0x2000, 5, false)])
    var reader = DescriptorChainReader(descriptors, memory: memory)
    #expect(reader.remaining == 12)
    var bytes = [UInt8](repeating: 0, count: 20)
    let count = bytes.withUnsafeMutableBytes { reader.read(into: $0) }
    #expect(count == 12)
    #expect(Array(bytes.prefix(count)) == Array("hello, world".utf8))
    #expect(reader.remaining == 0)
    #expect(reader.next(limit: 10) == nil)
  }

  @Test func readerPiecesAreBoundedByTheLimit() {
    var reader = DescriptorChainReader(chain([(0x1000, 10, false), (0x2000, 3, false)]), memory: memory)
    var sizes: [Int] = []
    while let piece = reader.next(limit: 4) { sizes.append(piece.count) }
    #expect(sizes == [4, 4, 2, 3])
  }

  /// A buffer outside guest RAM ends the stream: nothing past it is read.
  @Test func readerStopsAtABufferOutsideRAM() throws {
    try memory.write([1, 2, 3], at: 0x1000)
    let descriptors = chain([(0x1000, 3, false), (0x4FFF, 2, false), (0x2000, 4, false)])
    var reader = DescriptorChainReader(descriptors, memory: memory)
    var bytes = [UInt8](repeating: 0, count: 16)
    #expect(bytes.withUnsafeMutableBytes { reader.read(into: $0) } == 3)
    #expect(reader.remaining == 0)
  }

  @Test func writerFillsTheWritableBuffersInOrder() throws {
    let descriptors = chain([(0x1000, 4, false), (0x2000, 3, true), (0x3000, 10, true)])
    var writer = DescriptorChainWriter(descriptors, memory: memory)
    #expect(writer.remaining == 13)
    #expect(writer.write(Array("abcdef".utf8)) == 6)
    #expect(writer.written == 6)
    #expect(try memory.read(at: 0x2000, count: 3) == Array("abc".utf8))
    #expect(try memory.read(at: 0x3000, count: 3) == Array("def".utf8))
    #expect(writer.write([UInt8](repeating: 0x5A, count: 100)) == 7)  // the room left
    #expect(writer.written == 13)
    #expect(writer.write([1]) == 0)
    #expect(try memory.read(at: 0x1000, count: 4) == [0, 0, 0, 0])  // the readable buffer untouched
  }

  /// fill hands out guest memory in place, at most `limit` bytes, and counts only what was filled.
  @Test func writerFillCountsWhatTheBodyFilled() throws {
    var writer = DescriptorChainWriter(chain([(0x1000, 8, true)]), memory: memory)
    var offered = 0
    let filled = writer.fill(limit: 100) { buffer in
      offered = buffer.count
      buffer[0] = 0xAB
      return 1
    }
    #expect(filled == 1 && offered == 8)
    #expect(writer.fill(limit: 3) { $0.count } == 3)
    #expect(writer.written == 4)
    #expect(writer.remaining == 4)
    #expect(try memory.read(at: 0x1000, count: 1) == [0xAB])
  }

  @Test func writerStopsAtABufferOutsideRAM() {
    var writer = DescriptorChainWriter(chain([(0x1000, 2, true), (0x9000, 4, true), (0x2000, 4, true)]), memory: memory)
    #expect(writer.write([UInt8](repeating: 7, count: 10)) == 2)
    #expect(writer.written == 2)
  }
}
