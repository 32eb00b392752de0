import AsyncIO
import Devices
import Foundation
import GuestMemory
import TestSupport
import VirtIO

/// A temp-dir disk image, an I/O loop, a virtio-blk device behind the PCI transport, and a driver.
final class BlockFixture {
  static let ramBase: UInt64 = 0x8000_0000
  let directory: URL
  let path: String
  let memory: GuestMemory
  let loop: IOLoop
  let device: VirtioBlock
  let transport: VirtioPCITransport
  let driver: VirtioPCIDriverHarness
  let interrupt = RecordingInterruptLine()

  init(
    sectors: Int = 2048, readOnly: Bool = false, direct: Bool = false, queues: Int = 1, queueSize: UInt16 = 64,
    requireAccessPlatform: Bool = false, synchronous: Bool = false, ioEvents: Int = 256,
    limits: BlockRequestLimits? = nil
  ) throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("virtio-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    path = directory.appendingPathComponent("disk.img").path
    // Sector n holds bytes (n + i) & 0xFF, so reads are checkable.
    var contents = [UInt8](repeating: 0, count: sectors * 512)
    for sector in 0..<sectors { for i in 0..<512 { contents[sector * 512 + i] = UInt8((sector + i) & 0xFF) } }
    FileManager.default.createFile(atPath: path, contents: Data(contents))
    memory = try GuestMemory(ranges: [(Self.ramBase, 16 << 20)])
    loop = try IOLoop(name: "test-io", maxEvents: ioEvents, forceSynchronous: synchronous)
    let file = try BlockFile(path: path, readOnly: readOnly, direct: direct)
    device = VirtioBlock(
      file: file, loop: loop, queues: queues, serial: "serial-0123456789abcdef",
      limits: limits ?? BlockRequestLimits(queueSize: queueSize))
    try loop.start()
    transport = VirtioPCITransport(
      device: device, memory: memory, interrupt: interrupt, barAddress: 0x5000_0000,
      requireAccessPlatform: requireAccessPlatform)
    driver = VirtioPCIDriverHarness(
      transport: transport, memory: memory, interrupt: interrupt,
      allocator: GuestAllocator(base: Self.ramBase, size: 16 << 20))
  }

  deinit {
    loop.stop()
    try? FileManager.default.removeItem(at: directory)
  }

  func start(features: UInt64? = nil, queues: Int = 1, size: UInt16 = 64) {
    driver.start(features: features, queueCount: queues, size: size)
  }

  struct Request {
    var head: UInt16
    var data: UInt64
    var status: UInt64
  }

  /// Posts a block request: header, `dataLength` bytes of data (device-writable for reads and
  /// get-id), status byte.
  @discardableResult
  func post(
    type: UInt32, sector: UInt64, dataLength: Int = 512, dataWritable: Bool? = nil, queue: Int = 0,
    indirect: Bool = false, data: UInt64? = nil, notify: Bool = true
  ) -> Request {
    let header = driver.allocate(16)
    try! memory.store(type, at: header)
    try! memory.store(UInt32(0), at: header + 4)
    try! memory.store(sector, at: header + 8)
    let buffer = data ?? (dataLength > 0 ? driver.allocate(dataLength, alignment: 512) : 0)
    let status = driver.allocate(1)
    try! memory.store(UInt8(0xFF), at: status)
    var buffers = [MockVirtQueueDriver.Buffer(address: header, length: 16, isWritable: false)]
    if dataLength > 0 {
      let writable = dataWritable ?? (type == 0 || type == 8)
      buffers.append(.init(address: buffer, length: UInt32(dataLength), isWritable: writable))
    }
    buffers.append(.init(address: status, length: 1, isWritable: true))
    let head = driver.post(queue, buffers, indirect: indirect)!
    if notify { driver.notify(queue) }
    return Request(head: head, data: buffer, status: status)
  }

  func statusByte(_ request: Request) -> UInt8 { try! memory.load(UInt8.self, at: request.status) }

  func fileBytes() -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path)!) }
}
