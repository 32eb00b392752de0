import FirmwareCore
import GuestMemory
import Synchronization
import Testing
import TestSupport
import VirtIO

@Suite struct VirtioEntropyTests {
  let memory = try! GuestMemory(ranges: [(0x8000_0000, 1 << 20)])

  /// An entropy device behind the PCI transport (fed by `source`, else getrandom) and its driver.
  func make(
    realm: Bool = false, source: (@Sendable (UnsafeMutableRawBufferPointer) -> Int)? = nil
  ) -> VirtioPCIDriverHarness {
    let device = source.map { VirtioEntropy(source: $0) } ?? VirtioEntropy()
    let line = RecordingInterruptLine()
    let transport = VirtioPCITransport(
      device: device, memory: memory, interrupt: line, barAddress: 0x5000_4000, requireAccessPlatform: realm)
    return VirtioPCIDriverHarness(
      transport: transport, memory: memory, interrupt: line, allocator: GuestAllocator(base: 0x8000_0000, size: 1 << 20))
  }

  @Test func identity() {
    let driver = make()
    #expect(driver.transport.readConfig(offset: 2, size: 2) == 0x1044)  // virtio 1.x device 4
    #expect(driver.transport.readConfig(offset: 8, size: 4) >> 8 == 0xFF_0000)
    #expect(driver.readCommon(0x12, size: 2) == 1)  // num_queues
  }

  /// Each posted buffer comes back full, across its descriptors, from the source.
  @Test func buffersAreFilledFromTheSource() throws {
    let counter = Mutex<UInt8>(0)
    let driver = make(source: { buffer in
      counter.withLock { next in
        for index in buffer.indices {
          buffer[index] = next
          next &+= 1
        }
      }
      return buffer.count
    })
    driver.start(queueCount: 1, size: 16)
    let first = driver.allocate(16), second = driver.allocate(48)
    driver.post(0, [.init(address: first, length: 16, isWritable: true), .init(address: second, length: 48, isWritable: true)])
    driver.notify(0)
    #expect(driver.popUsed(0)?.length == 64)
    #expect(try memory.read(at: first, count: 16) + memory.read(at: second, count: 48) == (0..<64).map { UInt8($0) })
    #expect(driver.interrupt.raised == 1)
  }

  /// With the host's getrandom: two requests get different bytes, neither all zeros.
  @Test func getrandomGivesBytes() throws {
    let driver = make()
    driver.start(queueCount: 1, size: 16)
    let first = driver.allocate(32), second = driver.allocate(32)
    driver.post(0, [.init(address: first, length: 32, isWritable: true)])
    driver.post(0, [.init(address: second, length: 32, isWritable: true)])
    driver.notify(0)
    #expect(driver.popUsed(0)?.length == 32)
    #expect(driver.popUsed(0)?.length == 32)
    let a = try memory.read(at: first, count: 32), b = try memory.read(at: second, count: 32)
    #expect(a != b)
    #expect(a.contains { $0 != 0 } && b.contains { $0 != 0 })
  }

  /// A buffer as large as the guest likes is answered with at most maxRequestBytes.
  @Test func largeRequestsAreAnsweredInPart() {
    let driver = make()
    driver.start(queueCount: 1, size: 16)
    let buffer = driver.allocate(512 << 10)
    driver.post(0, [.init(address: buffer, length: 512 << 10, isWritable: true)])
    driver.notify(0)
    #expect(driver.popUsed(0)?.length == UInt32(VirtioEntropy.maxRequestBytes))
  }

  /// A chain with no writable buffer comes back empty; a source that fails gives what it gave.
  @Test func emptyAnswers() {
    let driver = make(source: { _ in 0 })
    driver.start(queueCount: 1, size: 16)
    let buffer = driver.allocate(16)
    driver.post(0, [.init(address: buffer, length: 16, isWritable: false)])
    driver.post(0, [.init(address: buffer, length: 16, isWritable: true)])
    driver.notify(0)
    #expect(driver.popUsed(0)?.length == 0)
    #expect(driver.popUsed(0)?.length == 0)
  }

  /// A broken ring sets DEVICE_NEEDS_RESET; after a reset the device works again.
  @Test func aBrokenRingNeedsReset() {
    let driver = make()
    driver.start(queueCount: 1, size: 16)
    driver.queues[0].setAvailableIndex(100)  // more than a queue ahead
    driver.notify(0)
    #expect(driver.status & VirtioStatus.needsReset != 0)
    driver.setStatus(0)
    driver.start(queueCount: 1, size: 16)
    let buffer = driver.allocate(8)
    driver.post(0, [.init(address: buffer, length: 8, isWritable: true)])
    driver.notify(0)
    #expect(driver.popUsed(0)?.length == 8)
  }

  /// A Realm's driver must take ACCESS_PLATFORM, like every other device's.
  @Test func aRealmNeedsAccessPlatform() {
    let driver = make(realm: true)
    #expect(driver.deviceFeatures & VirtioFeature.accessPlatform != 0)
    #expect(!driver.negotiate(features: VirtioFeature.version1))
    #expect(driver.negotiate(features: VirtioFeature.version1 | VirtioFeature.accessPlatform))
  }
}
