import AsyncIO
import CLibAIO
import Devices
import Foundation
import GuestMemory
import Testing
import TestSupport
import VirtIO
import FirmwareCore

@Suite struct VirtioBlockTests {
  @Test func readReturnsFileContents() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let request = fixture.post(type: 0, sector: 3, dataLength: 1024)
    let used = fixture.driver.waitUsed(0, count: 1)
    #expect(used.count == 1)
    #expect(used.first?.head == request.head)
    #expect(used.first?.length == 1025)
    #expect(fixture.statusByte(request) == BlockStatus.ok)
    let bytes = try fixture.memory.read(at: request.data, count: 1024)
    #expect(bytes == fixture.fileBytes()[1536..<2560].map { $0 })
    #expect(fixture.interrupt.raised >= 1)
  }

  @Test func writeReachesTheFile() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let data = fixture.driver.allocate(512)
    try fixture.memory.write([UInt8](repeating: 0xAB, count: 512), at: data)
    let request = fixture.post(type: 1, sector: 7, dataLength: 512, data: data)
    let used = fixture.driver.waitUsed(0, count: 1)
    #expect(used.first?.length == 1)
    #expect(fixture.statusByte(request) == BlockStatus.ok)
    #expect(fixture.fileBytes()[3584..<4096].allSatisfy { $0 == 0xAB })
    #expect(fixture.fileBytes()[3583] != 0xAB)
  }

  @Test func flushAndGetID() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let flush = fixture.post(type: 4, sector: 0, dataLength: 0)
    let id = fixture.post(type: 8, sector: 0, dataLength: 20)
    let used = fixture.driver.waitUsed(0, count: 2)
    #expect(used.count == 2)
    #expect(fixture.statusByte(flush) == BlockStatus.ok)
    #expect(fixture.statusByte(id) == BlockStatus.ok)
    let serial = try fixture.memory.read(at: id.data, count: 20)
    #expect(String(decoding: serial, as: UTF8.self) == "serial-0123456789abc")
  }

  @Test func discardAndWriteZeroes() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let features = fixture.driver.deviceFeatures
    #expect(features & VirtioBlock.Feature.writeZeroes != 0)
    for (type, sector) in [(UInt32(13), UInt64(16)), (11, 64)] where type == 13 || features & VirtioBlock.Feature.discard != 0 {
      let range = fixture.driver.allocate(16)
      try fixture.memory.store(sector, at: range)
      try fixture.memory.store(UInt32(8), at: range + 8)
      try fixture.memory.store(UInt32(0), at: range + 12)
      let request = fixture.post(type: type, sector: 0, dataLength: 16, dataWritable: false, data: range)
      _ = fixture.driver.waitUsed(0, count: 1)
      #expect(fixture.statusByte(request) == BlockStatus.ok)
      let bytes = fixture.fileBytes()
      #expect(bytes[Int(sector) * 512..<Int(sector + 8) * 512].allSatisfy { $0 == 0 })
      #expect(bytes[Int(sector + 8) * 512 + 1] != 0)
    }
  }

  @Test func unknownRequestTypeIsUnsupported() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let request = fixture.post(type: 99, sector: 0, dataLength: 0)
    _ = fixture.driver.waitUsed(0, count: 1)
    #expect(fixture.statusByte(request) == BlockStatus.unsupported)
  }

  @Test func sectorBeyondCapacityFails() throws {
    let fixture = try BlockFixture(sectors: 64)
    fixture.start()
    let past = fixture.post(type: 0, sector: 64, dataLength: 512)
    let straddling = fixture.post(type: 1, sector: 63, dataLength: 1024, dataWritable: false)
    let huge = fixture.post(type: 0, sector: UInt64.max, dataLength: 512)
    let used = fixture.driver.waitUsed(0, count: 3)
    #expect(used.count == 3)
    #expect(fixture.statusByte(past) == BlockStatus.ioError)
    #expect(fixture.statusByte(straddling) == BlockStatus.ioError)
    #expect(fixture.statusByte(huge) == BlockStatus.ioError)
    #expect(fixture.driver.readDeviceConfig(0, size: 8) == 64)
  }

  @Test func unalignedLengthFails() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let request = fixture.post(type: 0, sector: 0, dataLength: 100)
    _ = fixture.driver.waitUsed(0, count: 1)
    #expect(fixture.statusByte(request) == BlockStatus.ioError)
  }

  @Test func writeToReadOnlyDiskFails() throws {
    let fixture = try BlockFixture(readOnly: true)
    #expect(fixture.driver.deviceFeatures & VirtioBlock.Feature.readOnly != 0)
    #expect(fixture.driver.deviceFeatures & VirtioBlock.Feature.writeZeroes == 0)
    fixture.start()
    let before = fixture.fileBytes()
    let write = fixture.post(type: 1, sector: 0, dataLength: 512, dataWritable: false)
    let zeroes = fixture.post(type: 13, sector: 0, dataLength: 16, dataWritable: false)
    let read = fixture.post(type: 0, sector: 0, dataLength: 512)
    _ = fixture.driver.waitUsed(0, count: 3)
    #expect(fixture.statusByte(write) == BlockStatus.ioError)
    #expect(fixture.statusByte(zeroes) == BlockStatus.unsupported)
    #expect(fixture.statusByte(read) == BlockStatus.ok)
    #expect(fixture.fileBytes() == before)
  }

  @Test func outOfRAMBufferFailsTheRequestOnly() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let bad = fixture.post(type: 0, sector: 0, dataLength: 512, data: 0x1000)
    let badEnd = fixture.post(type: 0, sector: 0, dataLength: 4096, data: BlockFixture.ramBase + (16 << 20) - 512)
    let good = fixture.post(type: 0, sector: 1, dataLength: 512)
    let used = fixture.driver.waitUsed(0, count: 3)
    #expect(used.count == 3)
    #expect(fixture.statusByte(bad) == BlockStatus.ioError)
    #expect(fixture.statusByte(badEnd) == BlockStatus.ioError)
    #expect(fixture.statusByte(good) == BlockStatus.ok)
    #expect(fixture.driver.status & VirtioStatus.needsReset == 0)
  }

  @Test func chainWithALoopMarksNeedsReset() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let queue = fixture.driver.queues[0]
    let header = fixture.driver.allocate(16)
    queue.writeDescriptor(5, address: header, length: 16, flags: VirtqDescriptorFlag.next, next: 6)
    queue.writeDescriptor(6, address: header, length: 16, flags: VirtqDescriptorFlag.next, next: 5)
    var driverQueue = queue
    driverQueue.publish(head: 5)
    fixture.driver.notify(0)
    var waited = 0
    while fixture.driver.status & VirtioStatus.needsReset == 0 && waited < 200 {
      usleep(10_000)
      waited += 1
    }
    #expect(fixture.driver.status & VirtioStatus.needsReset != 0)
    #expect(fixture.driver.readISR() & VirtioISR.configuration != 0)
    // A reset brings the device back.
    fixture.start()
    let request = fixture.post(type: 0, sector: 0)
    #expect(fixture.driver.waitUsed(0, count: 1).count == 1)
    #expect(fixture.statusByte(request) == BlockStatus.ok)
  }

  @Test func headOutOfRangeAndIndexJumpMarkNeedsReset() throws {
    for corrupt in 0..<2 {
      let fixture = try BlockFixture()
      fixture.start()
      var queue = fixture.driver.queues[0]
      if corrupt == 0 { queue.publish(head: 1000) } else { queue.setAvailableIndex(500) }
      fixture.driver.notify(0)
      var waited = 0
      while fixture.driver.status & VirtioStatus.needsReset == 0 && waited < 200 {
        usleep(10_000)
        waited += 1
      }
      #expect(fixture.driver.status & VirtioStatus.needsReset != 0)
    }
  }

  @Test func indirectDescriptors() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let request = fixture.post(type: 0, sector: 2, dataLength: 512, indirect: true)
    let used = fixture.driver.waitUsed(0, count: 1)
    #expect(used.first?.length == 513)
    #expect(fixture.statusByte(request) == BlockStatus.ok)
    #expect(try fixture.memory.read(at: request.data, count: 512) == Array(fixture.fileBytes()[1024..<1536]))
  }

  @Test func nestedIndirectMarksNeedsReset() throws {
    let fixture = try BlockFixture()
    fixture.start()
    let inner = fixture.driver.allocate(16, alignment: 16)
    let outer = fixture.driver.allocate(16, alignment: 16)
    var queue = fixture.driver.queues[0]
    queue.writeDescriptor(0, address: inner, length: 16, flags: VirtqDescriptorFlag.indirect, next: 0, table: outer)
    queue.writeDescriptor(3, address: outer, length: 16, flags: VirtqDescriptorFlag.indirect, next: 0)
    queue.publish(head: 3)
    fixture.driver.notify(0)
    var waited = 0
    while fixture.driver.status & VirtioStatus.needsReset == 0 && waited < 200 {
      usleep(10_000)
      waited += 1
    }
    #expect(fixture.driver.status & VirtioStatus.needsReset != 0)
  }

  @Test func indirectRefusedWithoutTheFeature() throws {
    let fixture = try BlockFixture()
    fixture.start(features: VirtioFeature.version1)
    _ = fixture.post(type: 0, sector: 2, indirect: true)
    var waited = 0
    while fixture.driver.status & VirtioStatus.needsReset == 0 && waited < 200 {
      usleep(10_000)
      waited += 1
    }
    #expect(fixture.driver.status & VirtioStatus.needsReset != 0)
  }

  @Test func eventIndexSuppressesInterrupts() throws {
    let fixture = try BlockFixture()
    fixture.start()
    #expect(fixture.transport.negotiatedFeatures & VirtioFeature.ringEventIndex != 0)
    let queue = fixture.driver.queues[0]
    // used_event far ahead: the device must not interrupt for the first completions.
    queue.setUsedEvent(10)
    let first = fixture.post(type: 0, sector: 0)
    let deadline = Date().addingTimeInterval(5)
    while fixture.statusByte(first) == 0xFF && Date() < deadline { usleep(1000) }
    usleep(20_000)
    #expect(fixture.interrupt.raised == 0)
    #expect(queue.usedIndex == 1)
    // The device asked to be notified from the next available entry on.
    #expect(queue.availableEvent == 1)
    // used_event = 1: the next completion (used index 1 -> 2) interrupts.
    queue.setUsedEvent(1)
    _ = fixture.post(type: 0, sector: 1)
    #expect(fixture.interrupt.wait(seconds: 5))
    #expect(fixture.driver.readISR() & VirtioISR.queue != 0)
    #expect(!fixture.interrupt.level)
  }

  @Test func noInterruptFlagWithoutEventIndex() throws {
    let fixture = try BlockFixture()
    fixture.start(features: VirtioFeature.version1)
    fixture.driver.queues[0].setNoInterrupt(true)
    let request = fixture.post(type: 0, sector: 0)
    let deadline = Date().addingTimeInterval(5)
    while fixture.statusByte(request) == 0xFF && Date() < deadline { usleep(1000) }
    usleep(20_000)
    #expect(fixture.statusByte(request) == BlockStatus.ok)
    #expect(fixture.interrupt.raised == 0)
  }

  @Test func resetInTheMiddleOfIO() throws {
    let fixture = try BlockFixture(sectors: 8192, queueSize: 256)
    fixture.start(size: 256)
    for index in 0..<80 {
      fixture.post(type: index % 2 == 0 ? 0 : 1, sector: UInt64(index * 16), dataLength: 8192, notify: false)
    }
    fixture.driver.notify(0)
    fixture.driver.setStatus(0)  // reset while requests are in flight
    // In-flight requests finish in the host; their completions are dropped (the generation moved
    // on), and device_status reads 0 only once none is left, as the driver waits for.
    let usedAtReset = fixture.driver.queues[0].usedIndex
    let deadline = Date().addingTimeInterval(5)
    while fixture.driver.status != 0 && Date() < deadline { usleep(100) }
    #expect(fixture.driver.status == 0)
    #expect(fixture.device.requestsInFlight == 0)
    #expect(fixture.driver.queues[0].usedIndex == usedAtReset)
    // The device works again after renegotiation.
    fixture.start()
    let request = fixture.post(type: 0, sector: 5)
    #expect(fixture.driver.waitUsed(0, count: 1).count == 1)
    #expect(fixture.statusByte(request) == BlockStatus.ok)
  }

  /// Two queues keep more requests in flight than the I/O thread has kernel slots (7 here): the
  /// rest wait their turn, and every request completes with the right data.
  @Test func moreRequestsThanIOSlots() throws {
    let fixture = try BlockFixture(sectors: 4096, queues: 2, queueSize: 256, ioEvents: 8)
    fixture.start(queues: 2, size: 256)
    var requests: [(queue: Int, sector: Int, request: BlockFixture.Request)] = []
    for index in 0..<160 {
      let queue = index % 2
      let sector = index * 3
      requests.append((queue, sector, fixture.post(type: 0, sector: UInt64(sector), dataLength: 1024, queue: queue, notify: false)))
    }
    fixture.driver.notify(0)
    fixture.driver.notify(1)
    #expect(fixture.driver.waitUsed(0, count: 80).count == 80)
    #expect(fixture.driver.waitUsed(1, count: 80).count == 80)
    for (_, sector, request) in requests {
      #expect(fixture.statusByte(request) == BlockStatus.ok)
      let bytes = try fixture.memory.read(at: request.data, count: 1024)
      #expect(bytes == (0..<1024).map { UInt8((sector + $0 / 512 + $0 % 512) & 0xFF) }, "sector \(sector)")
    }
  }

  @Test func multiQueue() throws {
    let fixture = try BlockFixture(queues: 2)
    #expect(fixture.driver.deviceFeatures & VirtioBlock.Feature.multiQueue != 0)
    #expect(fixture.driver.readDeviceConfig(0x22, size: 2) == 2)
    fixture.start(queues: 2)
    let first = fixture.post(type: 0, sector: 1, queue: 0)
    let second = fixture.post(type: 0, sector: 2, queue: 1)
    #expect(fixture.driver.waitUsed(0, count: 1).count == 1)
    #expect(fixture.driver.waitUsed(1, count: 1).count == 1)
    #expect(fixture.statusByte(first) == BlockStatus.ok)
    #expect(fixture.statusByte(second) == BlockStatus.ok)
  }

  @Test func synchronousFallback() throws {
    let fixture = try BlockFixture(synchronous: true)
    #expect(!fixture.loop.usesKernelAIO)
    fixture.start()
    let request = fixture.post(type: 0, sector: 9)
    #expect(fixture.driver.waitUsed(0, count: 1).count == 1)
    #expect(fixture.statusByte(request) == BlockStatus.ok)
  }

  @Test func directIOWithUnalignedBuffers() throws {
    let fixture: BlockFixture
    do {
      fixture = try BlockFixture(direct: true)
    } catch BlockFileError.directUnsupported {
      return  // this temp dir's file system refuses O_DIRECT: nothing to test here
    }
    fixture.start()
    let unaligned = fixture.driver.allocate(1024 + 8, alignment: 512) + 8
    let read = fixture.post(type: 0, sector: 4, dataLength: 1024, data: unaligned)
    #expect(fixture.driver.waitUsed(0, count: 1).count == 1)
    #expect(fixture.statusByte(read) == BlockStatus.ok)
    #expect(try fixture.memory.read(at: unaligned, count: 1024) == Array(fixture.fileBytes()[2048..<3072]))
    try fixture.memory.write([UInt8](repeating: 0x5A, count: 1024), at: unaligned)
    let write = fixture.post(type: 1, sector: 10, dataLength: 1024, dataWritable: false, data: unaligned)
    #expect(fixture.driver.waitUsed(0, count: 1).count == 1)
    #expect(fixture.statusByte(write) == BlockStatus.ok)
    #expect(fixture.fileBytes()[5120..<6144].allSatisfy { $0 == 0x5A })
  }

  /// Sixteen unaligned 4 MiB O_DIRECT writes at once need 64 MiB of bounce buffers; the disk's
  /// pool holds at most ``VirtioBlock/bounceCapacity`` and the rest wait their turn. All complete.
  @Test func directIOBounceBuffersAreBounded() throws {
    let fixture: BlockFixture
    do {
      fixture = try BlockFixture(sectors: 16384, direct: true)
    } catch BlockFileError.directUnsupported {
      return
    }
    fixture.start()
    let length = 4 << 20
    let unaligned = fixture.driver.allocate(length + 8, alignment: 512) + 8
    try fixture.memory.write([UInt8](repeating: 0xA5, count: length), at: unaligned)
    let requests = (0..<16).map { index in
      fixture.post(type: 1, sector: UInt64(index % 2) * 8192, dataLength: length, dataWritable: false, data: unaligned,
                   notify: false)
    }
    fixture.driver.notify(0)
    #expect(fixture.driver.waitUsed(0, count: 16, seconds: 30).count == 16)
    #expect(requests.allSatisfy { fixture.statusByte($0) == BlockStatus.ok })
    #expect(fixture.fileBytes().allSatisfy { $0 == 0xA5 })
    #expect(fixture.device.bounceHighWater > 0)
    #expect(fixture.device.bounceHighWater <= VirtioBlock.bounceCapacity)
    #expect(fixture.device.requestsInFlight == 0)
  }
}

@Suite struct VirtioTransportTests {
  @Test func pciIdentityAndCapabilities() throws {
    let fixture = try BlockFixture()
    let transport = fixture.transport
    #expect(transport.readConfig(offset: 0, size: 2) == 0x1AF4)
    #expect(transport.readConfig(offset: 2, size: 2) == 0x1042)
    #expect(transport.readConfig(offset: 8, size: 1) == 1)
    #expect(transport.readConfig(offset: 8, size: 4) >> 8 == 0x01_8000)
    #expect(transport.readConfig(offset: 0x2C, size: 2) == 0x1AF4)
    #expect(transport.readConfig(offset: 0x3D, size: 1) == 1)  // INTA
    #expect(transport.readConfig(offset: 6, size: 2) & 0x10 != 0)  // capability list
    #expect(Set(fixture.driver.regions.keys) == [1, 2, 3, 4])
    #expect(fixture.driver.notifyMultiplier == 4)
    #expect(fixture.driver.bar == 0x5000_0000)
    #expect(transport.barMappings == [PCIBARMapping(bar: 0, base: 0x5000_0000, size: 0x4000)])
  }

  @Test func blockConfigSpace() throws {
    let fixture = try BlockFixture(sectors: 100)
    #expect(fixture.driver.readDeviceConfig(0, size: 8) == 100)
    #expect(fixture.driver.readDeviceConfig(0, size: 4) == 100)
    #expect(fixture.driver.readDeviceConfig(0x14, size: 4) == 512)
    #expect(fixture.driver.readDeviceConfig(0x0C, size: 4) == 62)
    #expect(fixture.driver.readDeviceConfig(0x22, size: 2) == 1)
    #expect(fixture.driver.readDeviceConfig(1000, size: 4) == 0)
    #expect(fixture.driver.readCommon(0x12, size: 2) == 1)  // num_queues
    #expect(fixture.driver.readCommon(0x18, size: 2) == 64)  // queue size max
  }

  @Test func blockConfigSpaceWithRealmLimits() throws {
    // A 256 MiB Realm: the guest's swiotlb pool is 128 slots; half of it holds 4 requests of
    // 2 x 4 KiB segments (36 slots; 8 requests of 4 segments would take 120)
    let limits = BlockRequestLimits.realm(memorySize: 256 << 20, disks: 1)
    #expect(limits == BlockRequestLimits(queueSize: 4, maxSegments: 2, maxSegmentSize: 4096))
    #expect(limits.realmSlotsInFlight == 36)
    let fixture = try BlockFixture(sectors: 100, limits: limits)
    #expect(fixture.driver.deviceFeatures & VirtioBlock.Feature.sizeMax != 0)
    #expect(fixture.driver.readDeviceConfig(0x08, size: 4) == 4096)  // size_max
    #expect(fixture.driver.readDeviceConfig(0x0C, size: 4) == 2)  // seg_max
    #expect(fixture.driver.readCommon(0x18, size: 2) == 4)  // queue size max
    // a normal VM's disk: no size_max, seg_max from the queue
    let plain = try BlockFixture(sectors: 100)
    #expect(plain.driver.deviceFeatures & VirtioBlock.Feature.sizeMax == 0)
    #expect(plain.driver.readDeviceConfig(0x08, size: 4) == 0)
    #expect(plain.driver.readDeviceConfig(0x0C, size: 4) == 62)
  }

  @Test func realmLimitsFitHalfTheGuestPool() {
    for mib in [48, 64, 128, 256, 384, 512, 1024, 2048, 4096, 16384] {
      for (disks, queues) in [(1, 1), (1, 4), (3, 2)] {
        let memory = UInt64(mib) << 20
        let limits = BlockRequestLimits.realm(memorySize: memory, disks: disks, queues: queues)
        let queue = UInt64(limits.queueSize)
        let context = "\(mib) MiB, \(disks) disks x \(queues) queues: queue \(queue)"
        #expect(queue >= 4 && queue <= 256 && queue & (queue - 1) == 0, "\(context)")
        #expect(UInt64(limits.maxSegments!) <= min(4, queue - 2), "\(context)")
        let budget = memory / 1024 / 2048 / 2 / UInt64(disks * queues)
        // the smallest queue is kept even where it does not fit; otherwise it fits, and twice it would not
        #expect(queue == 4 || limits.realmSlotsInFlight <= budget, "\(context)")
        if queue < 256 {
          let twice = BlockRequestLimits(queueSize: UInt16(queue * 2), maxSegments: 4, maxSegmentSize: 4096)
          #expect(twice.realmSlotsInFlight > budget, "\(context) is not the largest")
        }
      }
    }
    #expect(BlockRequestLimits.realm(memorySize: 1 << 30, disks: 1) == BlockRequestLimits(queueSize: 16, maxSegments: 4, maxSegmentSize: 4096))
    #expect(BlockRequestLimits.realm(memorySize: 16 << 20, disks: 1).queueSize == 4)
  }

  @Test func featureNegotiationNeedsVersion1() throws {
    let fixture = try BlockFixture()
    let offered = fixture.driver.deviceFeatures
    #expect(offered & VirtioFeature.version1 != 0)
    #expect(offered & VirtioFeature.accessPlatform != 0)
    #expect(!fixture.driver.negotiate(features: offered & ~VirtioFeature.version1))
    #expect(!fixture.driver.negotiate(features: offered | 1 << 50))  // not offered
    #expect(fixture.driver.negotiate(features: VirtioFeature.version1))
    // DRIVER_OK without FEATURES_OK does not activate the device.
    fixture.driver.negotiate(features: 0)
    fixture.driver.setUpQueue(0, size: 64)
    fixture.driver.driverOK()
    _ = fixture.post(type: 0, sector: 0)
    usleep(20_000)
    #expect(fixture.driver.queues[0].usedIndex == 0)
  }

  @Test func realmRequiresAccessPlatform() throws {
    let fixture = try BlockFixture(requireAccessPlatform: true)
    let offered = fixture.driver.deviceFeatures
    #expect(!fixture.driver.negotiate(features: offered & ~VirtioFeature.accessPlatform))
    #expect(fixture.driver.negotiate(features: offered))
  }

  @Test func invalidQueueSetsNeedsReset() throws {
    let fixture = try BlockFixture()
    #expect(fixture.driver.negotiate())
    fixture.driver.writeCommon(0x16, size: 2, value: 0)
    fixture.driver.writeCommon(0x18, size: 2, value: 48)  // not a power of two
    fixture.driver.writeCommon(0x20, size: 8, value: 0x1000)  // outside RAM
    fixture.driver.writeCommon(0x1C, size: 2, value: 1)
    fixture.driver.driverOK()
    #expect(fixture.driver.status & VirtioStatus.needsReset != 0)
  }

  @Test func intxDisableHoldsTheLineLow() throws {
    let fixture = try BlockFixture()
    fixture.start()
    fixture.transport.writeConfig(offset: 4, size: 2, value: 0x0406)
    _ = fixture.post(type: 0, sector: 0)
    #expect(fixture.driver.waitUsed(0, count: 1, seconds: 0.5).count == 1)
    #expect(!fixture.interrupt.level)
    fixture.transport.writeConfig(offset: 4, size: 2, value: 0x0006)
    #expect(fixture.interrupt.level)
    _ = fixture.driver.readISR()
    #expect(!fixture.interrupt.level)
  }

  @Test func movedBARIsFollowed() throws {
    let fixture = try BlockFixture()
    let bridge = PCIHostBridge(functions: [3: fixture.transport])
    let window = bridge.memoryWindow(base: 0x5000_0000)
    fixture.transport.writeConfig(offset: 4, size: 2, value: 0x6)
    #expect(window.read(offset: 0x12, size: 2) == 1)  // num_queues through the window
    // Size probe, then move to 0x5010_0000.
    fixture.transport.writeConfig(offset: 0x10, size: 4, value: 0xFFFF_FFFF)
    fixture.transport.writeConfig(offset: 0x14, size: 4, value: 0xFFFF_FFFF)
    #expect(fixture.transport.readConfig(offset: 0x10, size: 4) == 0xFFFF_C004)
    #expect(fixture.transport.readConfig(offset: 0x14, size: 4) == 0xFFFF_FFFF)
    fixture.transport.writeConfig(offset: 0x10, size: 4, value: 0x5010_0000)
    fixture.transport.writeConfig(offset: 0x14, size: 4, value: 0)
    #expect(window.read(offset: 0x12, size: 2) == 0xFFFF)  // nothing at the old place
    #expect(window.read(offset: 0x10_0012, size: 2) == 1)
    // Memory decoding off: nothing anywhere.
    fixture.transport.writeConfig(offset: 4, size: 2, value: 0)
    #expect(window.read(offset: 0x10_0012, size: 2) == 0xFFFF)
  }
}

@Suite struct BlockFileTests {
  @Test func missingImage() {
    #expect(throws: BlockFileError.missing(path: "/nonexistent/disk.img")) {
      try BlockFile(path: "/nonexistent/disk.img", readOnly: false)
    }
  }

  @Test func lockedImage() throws {
    let fixture = try BlockFixture()
    #expect(throws: BlockFileError.locked(path: fixture.path)) { try BlockFile(path: fixture.path, readOnly: false) }
    #expect(throws: BlockFileError.locked(path: fixture.path)) { try BlockFile(path: fixture.path, readOnly: true) }
    #expect(BlockFileError.locked(path: "x").description == "disk image x is in use by another process (QEMU or another realm-run holds a lock on it)")
  }

  @Test func sharedReadOnlyLocks() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("virtio-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("ro.img").path
    FileManager.default.createFile(atPath: path, contents: Data(count: 4096))
    let first = try BlockFile(path: path, readOnly: true)
    let second = try BlockFile(path: path, readOnly: true)
    #expect(first.size == 4096 && second.size == 4096)
    #expect(throws: BlockFileError.locked(path: path)) { try BlockFile(path: path, readOnly: false) }
  }

  /// A process that locks the image the way QEMU's virtio-blk does (OFD locks on bytes 100, 101
  /// and 201; another open file description stands for the other process) keeps realm-run out,
  /// and a plain flock, which QEMU does not see, is no longer what realm-run relies on.
  @Test func qemuStyleLocksOfAnotherOpenFileAreHonoured() throws {
    let fixture = try ScratchImage()
    let other = open(fixture.path, O_RDWR)
    defer { close(other) }
    #expect(clibaio_ofd_share_byte(other, 100) == 0)
    #expect(clibaio_ofd_share_byte(other, 101) == 0)
    #expect(clibaio_ofd_share_byte(other, 201) == 0)
    #expect(throws: BlockFileError.locked(path: fixture.path)) { try BlockFile(path: fixture.path, readOnly: false) }
    #expect(throws: BlockFileError.locked(path: fixture.path)) { try BlockFile(path: fixture.path, readOnly: true) }
  }

  /// The other way round: while realm-run writes an image, a QEMU-style reader that will not share
  /// writing (it checks byte 101) and a writer (byte 201) both find it taken.
  @Test func realmRunLocksAreVisibleToQEMUStyleChecks() throws {
    let fixture = try ScratchImage()
    let disk = try BlockFile(path: fixture.path, readOnly: false)
    let other = open(fixture.path, O_RDONLY)
    defer { close(other) }
    #expect(clibaio_ofd_byte_is_locked(other, 101) == 1)
    #expect(clibaio_ofd_byte_is_locked(other, 201) == 1)
    #expect(clibaio_ofd_byte_is_locked(other, 200) == 0)  // reading is shared
    withExtendedLifetime(disk) {}
  }

  /// Real QEMU, both ways: it refuses a drive realm-run holds, and realm-run refuses one it holds.
  @Test func qemuAndRealmRunSeeEachOthersLocks() throws {
    guard let qemu = findTool("qemu-system-aarch64") else { return }
    let fixture = try ScratchImage()
    let arguments = ["-M", "virt", "-S", "-display", "none", "-monitor", "none", "-serial", "none", "-nodefaults",
                     "-drive", "file=\(fixture.path),format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0"]
    do {
      let disk = try BlockFile(path: fixture.path, readOnly: false)
      let refused = try #require(runTool("qemu-system-aarch64", arguments))
      #expect(refused.status != 0)
      #expect(refused.output.contains("Failed to get \"write\" lock"), "QEMU said: \(refused.output)")
      withExtendedLifetime(disk) {}
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: qemu)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    defer {
      kill(process.processIdentifier, SIGKILL)  // QEMU started from the test runner may ignore SIGTERM
      process.waitUntilExit()
    }
    // QEMU takes its locks while it starts (paused by -S, it then only waits); watch for them
    // without taking any, which could make QEMU's own start fail.
    let observer = open(fixture.path, O_RDONLY)
    defer { close(observer) }
    let deadline = Date().addingTimeInterval(20)
    while clibaio_ofd_byte_is_locked(observer, 101) != 1 && Date() < deadline && process.isRunning { usleep(20_000) }
    #expect(throws: BlockFileError.locked(path: fixture.path)) { try BlockFile(path: fixture.path, readOnly: true) }
    #expect(process.isRunning)
  }

  @Test func directoryIsNotADisk() throws {
    #expect(throws: BlockFileError.self) { try BlockFile(path: "/tmp", readOnly: true) }
  }
}

/// A 1 MiB file in its own temporary directory, removed with the value.
final class ScratchImage {
  let directory: URL
  let path: String

  init() throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("virtio-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    path = directory.appendingPathComponent("disk.img").path
    FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20))
  }

  deinit { try? FileManager.default.removeItem(at: directory) }
}
