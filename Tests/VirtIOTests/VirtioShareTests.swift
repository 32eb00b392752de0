import FirmwareCore
import GuestMemory
import NineP
import Platform
import Testing
import TestSupport
import VirtIO

@Suite struct VirtioShareTests {
  let memory = try! GuestMemory(ranges: [(0x8000_0000, 4 << 20)])
  let scratch = ScratchDirectory()

  func make(realm: Bool = false, readOnly: Bool = false) throws -> VirtioPCIDriverHarness {
    let device = VirtioShare(directory: try SharedDirectory(path: scratch.path, readOnly: readOnly), tag: "results")
    let line = RecordingInterruptLine()
    let transport = VirtioPCITransport(
      device: device, memory: memory, interrupt: line, barAddress: 0x5000_4000, requireAccessPlatform: realm)
    return VirtioPCIDriverHarness(
      transport: transport, memory: memory, interrupt: line, allocator: GuestAllocator(base: 0x8000_0000, size: 4 << 20))
  }

  /// A 9P message: size[4] type[1] tag[2] then `body`.
  func message(_ type: UInt8, tag: UInt16, _ body: [UInt8]) -> [UInt8] {
    let size = UInt32(7 + body.count)
    return [UInt8(size & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 24), type, UInt8(tag & 0xFF), UInt8(tag >> 8)] + body
  }

  /// Posts `request` (split over two readable buffers) with `room` bytes for the reply; returns the reply.
  func exchange(_ driver: VirtioPCIDriverHarness, _ request: [UInt8], room: UInt32 = 4096) throws -> [UInt8]? {
    let split = request.count / 2
    let first = driver.allocate(max(split, 1)), second = driver.allocate(request.count - split)
    try memory.write(Array(request[..<split]), at: first)
    try memory.write(Array(request[split...]), at: second)
    let reply = driver.allocate(Int(room))
    driver.post(0, [
      .init(address: first, length: UInt32(split), isWritable: false),
      .init(address: second, length: UInt32(request.count - split), isWritable: false),
      .init(address: reply, length: room, isWritable: true),
    ])
    driver.notify(0)
    guard let used = driver.popUsed(0) else { return nil }
    return try memory.read(at: reply, count: Int(used.length))
  }

  @Test func identityAndTag() throws {
    let driver = try make()
    #expect(driver.transport.readConfig(offset: 2, size: 2) == 0x1049)  // virtio 1.x device 9
    #expect(driver.deviceFeatures & 1 == 1)  // VIRTIO_9P_MOUNT_TAG
    // Device configuration: tag_len[2] then the tag.
    #expect(driver.readDeviceConfig(0, size: 2) == 7)
    #expect((0..<7).map { UInt8(driver.readDeviceConfig(2 + $0, size: 1)) } == Array("results".utf8))
  }

  /// Requests through the queue: Tversion, Tattach, then Tlcreate and Twrite reach the host directory.
  @Test func requestsReachTheDirectory() throws {
    let driver = try make()
    driver.start(queueCount: 1, size: 16)
    let version = try #require(try exchange(driver, message(100, tag: 0xFFFF, [0, 0, 1, 0, 8, 0] + Array("9P2000.L".utf8))))
    #expect(version[4] == 101 && version[7...10] == [0, 0, 1, 0])  // Rversion, msize 65536
    let attach = try #require(try exchange(driver, message(104, tag: 1, [0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0])))
    #expect(attach[4] == 105)
    let create = try #require(try exchange(driver, message(14, tag: 2, [0, 0, 0, 0, 3, 0] + Array("out".utf8) + [2, 0, 0, 0, 0xA4, 0x01, 0, 0, 0, 0, 0, 0])))
    #expect(create[4] == 15)
    let write = try #require(try exchange(driver, message(118, tag: 3, [0, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [3, 0, 0, 0] + Array("abc".utf8))))
    #expect(write[4] == 119 && write[7] == 3)
    #expect(scratch.read("out") == Array("abc".utf8))
    #expect(driver.interrupt.raised > 0)
  }

  /// A reply with no room to go is answered Rlerror(EMSGSIZE) if that fits, else with nothing.
  @Test func replyRoomIsChecked() throws {
    let driver = try make()
    driver.start(queueCount: 1, size: 16)
    let version = try #require(try exchange(driver, message(100, tag: 0xFFFF, [0, 0, 1, 0, 8, 0] + Array("9P2000.L".utf8)), room: 12))
    #expect(version.count == 11 && version[4] == 7 && version[7] == UInt8(EMSGSIZE))
    #expect(try exchange(driver, message(100, tag: 0xFFFF, [0, 0, 1, 0, 8, 0] + Array("9P2000.L".utf8)), room: 4) == [])
  }

  @Test func aRealmNeedsAccessPlatform() throws {
    let driver = try make(realm: true)
    #expect(!driver.negotiate(features: VirtioFeature.version1 | 1))
    #expect(driver.negotiate(features: VirtioFeature.version1 | VirtioFeature.accessPlatform | 1))
  }
}
