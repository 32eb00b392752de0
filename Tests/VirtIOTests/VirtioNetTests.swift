import AsyncIO
import Foundation
import FirmwareCore
import GuestMemory
import Platform
import Testing
import TestSupport
import VirtIO

/// A virtio-net device on one end of a SOCK_SEQPACKET pair (one frame per read and write, as a
/// tap), its I/O thread, and the other end as the host's network.
final class NetFixture {
  let memory = try! GuestMemory(ranges: [(0x8000_0000, 4 << 20)])
  let loop = try! IOLoop(name: "net-test")
  let deviceEnd: FileDescriptor
  let hostEnd: FileDescriptor
  let device: VirtioNet
  let driver: VirtioPCIDriverHarness

  init(realm: Bool = false) {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
    deviceEnd = FileDescriptor(rawValue: fds[0])
    hostEnd = FileDescriptor(rawValue: fds[1])
    try! loop.start()
    device = VirtioNet(backend: deviceEnd, mac: [0x52, 0x54, 0, 1, 2, 3], loop: loop)
    let line = RecordingInterruptLine()
    let transport = VirtioPCITransport(
      device: device, memory: memory, interrupt: line, barAddress: 0x5000_4000, requireAccessPlatform: realm)
    driver = VirtioPCIDriverHarness(
      transport: transport, memory: memory, interrupt: line, allocator: GuestAllocator(base: 0x8000_0000, size: 4 << 20))
  }

  deinit {
    device.reset()
    loop.stop()
    deviceEnd.close()
    hostEnd.close()
  }

  /// The host sends one frame to the guest.
  func hostSends(_ frame: [UInt8]) {
    precondition(frame.withUnsafeBytes { write(hostEnd.rawValue, $0.baseAddress, $0.count) } == frame.count)
  }

  /// The next frame the guest sent, waiting up to a second; nil if none came.
  func hostReceives() -> [UInt8]? {
    var poller = pollfd(fd: hostEnd.rawValue, events: Int16(POLLIN), revents: 0)
    guard poll(&poller, 1, 1000) == 1 else { return nil }
    var buffer = [UInt8](repeating: 0, count: 70_000)
    let count = buffer.withUnsafeMutableBytes { read(hostEnd.rawValue, $0.baseAddress, $0.count) }
    return count >= 0 ? Array(buffer.prefix(count)) : nil
  }

  /// Posts `count` receive buffers of `size` bytes; returns their addresses.
  func postReceiveBuffers(_ count: Int, size: Int) -> [UInt64] {
    (0..<count).map { _ in
      let address = driver.allocate(size)
      _ = driver.post(0, [.init(address: address, length: UInt32(size), isWritable: true)])
      return address
    }
  }
}

@Suite(.serialized) struct VirtioNetTests {
  static func frame(_ count: Int, seed: UInt8 = 1) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

  @Test func identityAndConfiguration() {
    let net = NetFixture()
    #expect(net.driver.transport.readConfig(offset: 2, size: 2) == 0x1041)  // virtio 1.x device 1
    #expect(net.driver.transport.readConfig(offset: 8, size: 4) >> 8 == 0x02_0000)  // network, Ethernet
    let features = net.driver.deviceFeatures
    #expect(features & VirtioNet.Feature.mac != 0 && features & VirtioNet.Feature.mergeableReceiveBuffers != 0)
    #expect((0..<6).map { UInt8(net.driver.readDeviceConfig($0, size: 1)) } == [0x52, 0x54, 0, 1, 2, 3])
    #expect(net.driver.readDeviceConfig(6, size: 2) == 1)  // VIRTIO_NET_S_LINK_UP
    #expect(net.driver.readCommon(0x12, size: 2) == 2)  // receiveq, transmitq
  }

  /// A frame the guest sends (header and frame split over descriptors) reaches the host whole.
  @Test func transmitReachesTheHost() throws {
    let net = NetFixture()
    net.driver.start(queueCount: 2, size: 64)
    let frame = Self.frame(1514)
    let first = net.driver.allocate(20), second = net.driver.allocate(1514)
    try net.memory.write([UInt8](repeating: 0, count: 12) + frame[0..<8], at: first)
    try net.memory.write(Array(frame[8...]), at: second)
    _ = net.driver.post(1, [.init(address: first, length: 20, isWritable: false), .init(address: second, length: 1506, isWritable: false)])
    net.driver.notify(1)
    #expect(net.hostReceives() == frame)
    #expect(net.driver.waitUsed(1, count: 1).count == 1)
    // Longer than any frame: dropped, still returned to the guest.
    let big = net.driver.allocate(70_000)
    _ = net.driver.post(1, [.init(address: big, length: 70_000, isWritable: false)])
    net.driver.notify(1)
    #expect(net.driver.waitUsed(1, count: 1).count == 1)
    #expect(net.hostReceives() == nil)
    #expect(net.device.droppedFrames == 1)
  }

  /// With mergeable receive buffers a frame spans as many buffers as it needs; num_buffers says how many.
  @Test func receiveSpansMergeableBuffers() throws {
    let net = NetFixture()
    net.driver.start(queueCount: 2, size: 64)
    let buffers = net.postReceiveBuffers(4, size: 1000)
    net.driver.notify(0)
    let frame = Self.frame(2500)
    net.hostSends(frame)
    let used = net.driver.waitUsed(0, count: 3)
    #expect(used.map(\.length) == [1000, 1000, 512])
    #expect(net.memory.get16(at: buffers[0] + 10) == 3)  // num_buffers
    let received = try net.memory.read(at: buffers[0] + 12, count: 988) + net.memory.read(at: buffers[1], count: 1000)
      + net.memory.read(at: buffers[2], count: 512)
    #expect(received == frame)
    #expect(net.driver.interrupt.raised > 0)
  }

  /// Without mergeable buffers each frame takes one buffer (num_buffers 1); one too small drops it.
  @Test func receiveWithoutMergeableBuffers() throws {
    let net = NetFixture()
    net.driver.start(features: VirtioFeature.version1 | VirtioNet.Feature.mac, queueCount: 2, size: 64)
    let small = net.postReceiveBuffers(1, size: 100)
    net.driver.notify(0)
    net.hostSends(Self.frame(1500))  // too long for the one buffer: dropped
    let buffers = net.postReceiveBuffers(1, size: 2048)
    net.driver.notify(0)
    net.hostSends(Self.frame(1500, seed: 9))
    let used = net.driver.waitUsed(0, count: 2)
    #expect(used.map(\.length) == [0, 1512])  // the small buffer back empty, then the frame
    #expect(net.memory.get16(at: buffers[0] + 10) == 1)
    #expect(try net.memory.read(at: buffers[0] + 12, count: 1500) == Self.frame(1500, seed: 9))
    #expect(net.device.droppedFrames == 1)
    _ = small
  }

  /// A frame that finds no buffer waits until the guest posts one.
  @Test func receiveWaitsForBuffers() throws {
    let net = NetFixture()
    net.driver.start(queueCount: 2, size: 64)
    let frame = Self.frame(600)
    net.hostSends(frame)
    net.hostSends(Self.frame(700, seed: 5))
    usleep(200_000)
    #expect(net.driver.popUsed(0) == nil)
    let buffers = net.postReceiveBuffers(2, size: 2048)
    net.driver.notify(0)
    let used = net.driver.waitUsed(0, count: 2)
    #expect(used.map(\.length) == [612, 712])
    #expect(try net.memory.read(at: buffers[0] + 12, count: 600) == frame)
  }

  /// Buffers too small together for a frame (mergeable): the device waits for more, without
  /// spinning over the ones it has (found by the virtio-net fuzzer), and delivers once they come.
  @Test func receiveWaitsWhenBuffersAreTooSmall() throws {
    let net = NetFixture()
    net.driver.start(queueCount: 2, size: 64)
    let small = net.postReceiveBuffers(2, size: 100)
    _ = net.driver.notifyIfNeeded(0)
    net.hostSends(Self.frame(1500))
    usleep(200_000)
    #expect(net.driver.popUsed(0) == nil)
    _ = net.postReceiveBuffers(1, size: 2048)
    // The driver notifies only when the device asked (EVENT_IDX): it must have, for more buffers.
    #expect(net.driver.notifyIfNeeded(0))
    #expect(net.driver.waitUsed(0, count: 3).map(\.length) == [100, 100, 1312])
    #expect(net.memory.get16(at: small[0] + 10) == 3)
  }

  /// The guest's receive ring runs dry under a burst and is refilled in rounds, kicking only when
  /// the device asked (EVENT_IDX): every frame of the burst arrives, in order.
  @Test func aBurstOutlastsTheRing() throws {
    let net = NetFixture()
    net.driver.start(queueCount: 2, size: 16)
    var delivered = 0
    for round in 0..<8 {
      _ = net.postReceiveBuffers(4, size: 2048)
      if round == 0 { for index in 0..<24 { net.hostSends(Self.frame(1000 + index)) } }
      _ = net.driver.notifyIfNeeded(0)
      let used = net.driver.waitUsed(0, count: 4, seconds: 2)
      #expect(used.map(\.length) == (0..<4).map { UInt32(12 + 1000 + delivered + $0) }, "round \(round)")
      delivered += used.count
      if delivered == 24 { break }
    }
    #expect(delivered == 24)
  }

  @Test func aRealmNeedsAccessPlatform() {
    let net = NetFixture(realm: true)
    #expect(!net.driver.negotiate(features: VirtioFeature.version1 | VirtioNet.Feature.mac))
    #expect(net.driver.negotiate(features: VirtioFeature.version1 | VirtioFeature.accessPlatform | VirtioNet.Feature.mac))
  }
}

@Suite struct TapDeviceTests {
  /// As root with /dev/net/tun (as on the CI machine): a tap is created under a kernel-chosen name
  /// from a pattern, brought up, and gone once closed.
  @Test(.enabled(if: getuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0))
  func createsAndBringsUpATap() throws {
    var name = ""
    do {
      let tap = try TapDevice(name: "rrtest%d")
      name = tap.name
      #expect(name.hasPrefix("rrtest") && name != "rrtest%d")
      let flags = try String(contentsOfFile: "/sys/class/net/\(name)/flags", encoding: .utf8)
      #expect((Int(flags.dropFirst(2).prefix { $0.isHexDigit }, radix: 16) ?? 0) & 1 == 1)  // IFF_UP
    }
    #expect(access("/sys/class/net/\(name)", F_OK) != 0)
  }

  @Test func errorsSayWhatToDo() {
    #expect(TapDevice.OpenError(name: "tap0", errno: Errno(rawValue: EPERM)).description
      == "tap tap0: not permitted: create it as root, or give this user an existing one (ip tuntap add tap0 mode tap user USER)")
    #expect(TapDevice.OpenError(name: "tap0", errno: Errno(rawValue: ENOENT)).description == "tap tap0: /dev/net/tun is missing (load the tun module)")
  }
}
