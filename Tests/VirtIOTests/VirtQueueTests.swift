import GuestMemory
import Testing
import TestSupport
import VirtIO
import FirmwareCore

@Suite struct VirtQueueTests {
  let memory = try! GuestMemory(ranges: [(0x8000_0000, 1 << 20)])

  func makeQueue(size: UInt16 = 8) -> (VirtQueue, MockVirtQueueDriver, GuestAllocator) {
    var allocator = GuestAllocator(base: 0x8000_0000, size: 1 << 20)
    let driver = MockVirtQueueDriver(index: 0, size: size, memory: memory, allocator: &allocator)
    var queue = VirtQueue(maxSize: size)
    queue.descriptorTable = driver.descriptorTable
    queue.availableRing = driver.availableRing
    queue.usedRing = driver.usedRing
    queue.isReady = true
    queue.indirect = true
    return (queue, driver, allocator)
  }

  @Test func popsDirectAndIndirectChains() throws {
    var (queue, driver, allocator) = makeQueue()
    #expect(queue.isValid(memory: memory))
    #expect(try queue.pop(memory: memory) == nil)
    let buffers: [MockVirtQueueDriver.Buffer] = [
      .init(address: 0x8000_9000, length: 16, isWritable: false), .init(address: 0x8000_A000, length: 1, isWritable: true),
    ]
    driver.post(buffers, allocator: &allocator)
    driver.post(buffers, indirect: true, allocator: &allocator)
    // What the device pops is exactly what the driver posted, directly and through an indirect table.
    #expect(try queue.pop(memory: memory)?.descriptors == buffers)
    #expect(try queue.pop(memory: memory)?.descriptors == buffers)
    #expect(try queue.pop(memory: memory) == nil)
  }

  @Test func refusesLoopsAndBadIndices() throws {
    var (queue, driver, _) = makeQueue()
    driver.writeDescriptor(0, address: 0x8000_9000, length: 1, flags: VirtqDescriptorFlag.next, next: 0)
    driver.publish(head: 0)
    #expect(throws: VirtQueueError.chainTooLong) { try queue.pop(memory: memory) }
    driver.writeDescriptor(1, address: 0x8000_9000, length: 1, flags: VirtqDescriptorFlag.next, next: 99)
    driver.publish(head: 1)
    #expect(throws: VirtQueueError.nextOutOfRange(99)) { try queue.pop(memory: memory) }
    driver.publish(head: 8)
    #expect(throws: VirtQueueError.headOutOfRange(8)) { try queue.pop(memory: memory) }
    driver.setAvailableIndex(200)
    #expect(throws: VirtQueueError.availableIndexJump(available: 200, next: 3)) { try queue.pop(memory: memory) }
  }

  @Test func refusesBadIndirectTables() throws {
    var (queue, driver, _) = makeQueue()
    driver.writeDescriptor(0, address: 0x8000_9000, length: 15, flags: VirtqDescriptorFlag.indirect, next: 0)
    driver.publish(head: 0)
    #expect(throws: VirtQueueError.indirectTableLength(15)) { try queue.pop(memory: memory) }
    driver.writeDescriptor(1, address: 0xFFFF_FFFF_FFFF_FFF0, length: 32, flags: VirtqDescriptorFlag.indirect, next: 0)
    driver.publish(head: 1)
    #expect(throws: VirtQueueError.self) { try queue.pop(memory: memory) }
    driver.writeDescriptor(2, address: 0x8000_9000, length: 32, flags: VirtqDescriptorFlag.indirect | VirtqDescriptorFlag.next, next: 3)
    driver.publish(head: 2)
    #expect(throws: VirtQueueError.indirectWithNext) { try queue.pop(memory: memory) }
    // An indirect table whose entries loop.
    driver.writeDescriptor(0, address: 0x8000_9000, length: 1, flags: VirtqDescriptorFlag.next, next: 1, table: 0x8000_9000)
    driver.writeDescriptor(1, address: 0x8000_9000, length: 1, flags: VirtqDescriptorFlag.next, next: 0, table: 0x8000_9000)
    driver.writeDescriptor(3, address: 0x8000_9000, length: 32, flags: VirtqDescriptorFlag.indirect, next: 0)
    driver.publish(head: 3)
    #expect(throws: VirtQueueError.chainTooLong) { try queue.pop(memory: memory) }
  }

  @Test func usedRingAndWrapAround() throws {
    var (queue, driver, allocator) = makeQueue(size: 4)
    for round in 0..<10 {
      driver.post([.init(address: 0x8000_9000, length: 4, isWritable: true)], allocator: &allocator)
      let popped = try queue.pop(memory: memory)
      let chain = try #require(popped)
      try queue.addUsed(memory: memory, head: chain.head, length: UInt32(round))
      let entry = driver.popUsed()
      let used = try #require(entry)
      #expect(used.head == chain.head && used.length == UInt32(round))
    }
  }

  @Test func addressMaskClearsTheSharedBit() throws {
    var (queue, driver, allocator) = makeQueue()
    let shared: UInt64 = 1 << 40
    queue.addressMask = ~shared
    queue.descriptorTable |= shared
    driver.post([.init(address: 0x8000_9000 | shared, length: 4, isWritable: true)], allocator: &allocator)
    #expect(try queue.pop(memory: memory)?.descriptors.first?.address == 0x8000_9000)
  }
}

@Suite struct BlockRequestTests {
  @Test func headerSplitAcrossDescriptors() throws {
    let header: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
    let descriptors = [
      VirtqDescriptor(address: 0x1000, length: 8, isWritable: false),
      VirtqDescriptor(address: 0x2000, length: 520, isWritable: false),
      VirtqDescriptor(address: 0x3000, length: 1, isWritable: true),
    ]
    let request = try BlockRequest.parse(descriptors) { address, buffer in
      let start = address == 0x1000 ? 0 : 8
      buffer.copyBytes(from: header[start..<(start + buffer.count)])
      return true
    }
    #expect(request.type == .write)
    #expect(request.sector == 7)
    #expect(request.readable == [GuestSegment(address: 0x2008, length: 512)])
    #expect(request.status == 0x3000)
  }

  @Test func headerOutsideRAM() {
    #expect(throws: BlockRequest.ParseError.badHeader(status: 0x3000)) {
      try BlockRequest.parse([
        VirtqDescriptor(address: 0, length: 16, isWritable: false), VirtqDescriptor(address: 0x3000, length: 1, isWritable: true),
      ]) { _, _ in false }
    }
  }

  @Test func malformedRequests() {
    #expect(throws: BlockRequest.ParseError.noStatus) {
      try BlockRequest.parse([VirtqDescriptor(address: 0, length: 16, isWritable: false)]) { _, _ in true }
    }
    #expect(throws: BlockRequest.ParseError.badHeader(status: 0x3000)) {
      try BlockRequest.parse([
        VirtqDescriptor(address: 0, length: 4, isWritable: false), VirtqDescriptor(address: 0x3000, length: 1, isWritable: true),
      ]) { _, _ in true }
    }
    #expect(throws: BlockRequest.ParseError.badOrder(status: 0x3000)) {
      try BlockRequest.parse([
        VirtqDescriptor(address: 0, length: 16, isWritable: false), VirtqDescriptor(address: 0x2000, length: 1, isWritable: true),
        VirtqDescriptor(address: 0x4000, length: 16, isWritable: false), VirtqDescriptor(address: 0x3000, length: 1, isWritable: true),
      ]) { _, _ in true }
    }
  }
}
