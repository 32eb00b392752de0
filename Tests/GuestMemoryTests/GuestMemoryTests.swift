import GuestMemory
import Testing

@Suite struct GuestMemoryTests {
  @Test func readsAndWritesInsideRAM() throws {
    let memory = try GuestMemory(ranges: [(0x8000_0000, 0x10_0000)])
    try memory.write([1, 2, 3, 4], at: 0x8000_0010)
    #expect(try memory.read(at: 0x8000_0010, count: 4) == [1, 2, 3, 4])
    try memory.store(UInt32(0xAABB_CCDD), at: 0x8000_0101)  // unaligned is fine
    #expect(try memory.load(UInt32.self, at: 0x8000_0101) == 0xAABB_CCDD)
    #expect(try memory.read(at: 0x8000_0101, count: 1) == [0xDD])  // little-endian
    #expect(memory.totalSize == 0x10_0000)
  }

  @Test func refusesRangesOutsideRAM() throws {
    let memory = try GuestMemory(ranges: [(0x8000_0000, 0x1000)])
    #expect(throws: GuestMemoryError.outOfRange(address: 0x7FFF_FFFF, length: 2)) { try memory.read(at: 0x7FFF_FFFF, count: 2) }
    #expect(throws: GuestMemoryError.self) { try memory.read(at: 0x8000_0FFF, count: 2) }
    #expect(throws: GuestMemoryError.self) { try memory.load(UInt64.self, at: UInt64.max - 3) }
    #expect(throws: GuestMemoryError.self) { try memory.slice(at: 0x8000_0000, count: -1) }
    #expect(throws: GuestMemoryError.self) { try memory.write([UInt8](repeating: 0, count: 0x1001), at: 0x8000_0000) }
    #expect(throws: GuestMemoryError.self) { try memory.slice(at: 0x8000_1000, count: 1) }
  }

  @Test func rangesMustNotSpanRegions() throws {
    let memory = try GuestMemory(ranges: [(0x1000, 0x1000), (0x2000, 0x1000)])
    #expect(throws: GuestMemoryError.self) { try memory.read(at: 0x1FFF, count: 2) }
    #expect(try memory.read(at: 0x2FFF, count: 1) == [0])
  }

  @Test func refusesBadLayouts() {
    #expect(throws: GuestMemoryError.self) { try GuestMemory(ranges: [(0x1000, 0)]) }
    #expect(throws: GuestMemoryError.self) { try GuestMemory(ranges: [(0x1001, 0x1000)]) }
    #expect(throws: GuestMemoryError.self) { try GuestMemory(ranges: [(0x1000, 0x2000), (0x2000, 0x1000)]) }
  }

  @Test func ipaLayout() {
    #expect(IPALayout.minimumBits(reaching: 0x9000_0000, realm: false) == 32)
    #expect(IPALayout.minimumBits(reaching: 0x9000_0000, realm: true) == 33)
    #expect(IPALayout.minimumBits(reaching: 0x1_8000_0000, realm: true) == 34)
    let realm = IPALayout(bits: 33, isRealm: true)
    #expect(realm.sharedBit == 1 << 32)
    #expect(realm.canonical(0x1_0100_0000) == 0x0100_0000)
    #expect(realm.isShared(0x1_0100_0000))
    let normal = IPALayout(bits: 40, isRealm: false)
    #expect(normal.canonical(0x1_0100_0000) == 0x1_0100_0000)
    #expect(!normal.isShared(0x1_0100_0000))
  }
}
