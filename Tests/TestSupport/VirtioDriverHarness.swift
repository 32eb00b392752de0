import FirmwareCore
import Devices
import Dispatch
import GuestMemory
import Synchronization
import VirtIO

/// An interrupt line that records its level and counts rising edges; tests and the benchmark wait
/// on it like a guest waits for its interrupt.
public final class RecordingInterruptLine: InterruptLine, @unchecked Sendable {
  private let state = Mutex((level: false, raised: 0))
  private let edges = DispatchSemaphore(value: 0)

  public init() {}

  public func set(level: Bool) {
    let rising = state.withLock { state -> Bool in
      defer { state.level = level }
      if level && !state.level { state.raised += 1; return true }
      return false
    }
    if rising { edges.signal() }
  }

  public var level: Bool { state.withLock { $0.level } }
  /// Rising edges so far.
  public var raised: Int { state.withLock { $0.raised } }

  /// Waits up to `seconds` for a rising edge.
  @discardableResult
  public func wait(seconds: Double) -> Bool {
    edges.wait(timeout: .now() + seconds) == .success
  }
}

/// A bump allocator over a guest RAM range, for rings and buffers.
public struct GuestAllocator {
  public private(set) var next: UInt64
  public let end: UInt64

  public init(base: UInt64, size: UInt64) {
    next = base
    end = base + size
  }

  public mutating func allocate(_ size: Int, alignment: UInt64 = 64) -> UInt64 {
    let address = (next + alignment - 1) & ~(alignment - 1)
    precondition(address + UInt64(size) <= end, "test guest memory exhausted")
    next = address + UInt64(size)
    return address
  }
}

/// The driver side of one split virtqueue in guest memory: writes descriptors (direct or through an
/// indirect table), publishes them in the available ring, and reads the used ring — what a guest's
/// virtio driver does, for device tests and the benchmark.
public struct MockVirtQueueDriver {
  /// One buffer the driver posts: the device-side descriptor type, seen from the driver.
  public typealias Buffer = VirtqDescriptor

  public let index: Int
  public let size: UInt16
  public let memory: GuestMemory
  public let descriptorTable: UInt64
  public let availableRing: UInt64
  public let usedRing: UInt64
  public private(set) var availableIndex: UInt16 = 0
  public private(set) var lastUsed: UInt16 = 0
  private var free: [UInt16]
  private var chains: [UInt16: [UInt16]] = [:]

  public init(index: Int, size: UInt16, memory: GuestMemory, allocator: inout GuestAllocator) {
    self.index = index
    self.size = size
    self.memory = memory
    descriptorTable = allocator.allocate(16 * Int(size), alignment: 16)
    availableRing = allocator.allocate(6 + 2 * Int(size), alignment: 2)
    usedRing = allocator.allocate(6 + 8 * Int(size), alignment: 4)
    free = (0..<size).reversed()
    try! memory.zero(at: descriptorTable, count: 16 * Int(size))
    try! memory.zero(at: availableRing, count: 6 + 2 * Int(size))
    try! memory.zero(at: usedRing, count: 6 + 8 * Int(size))
  }

  public var freeDescriptors: Int { free.count }

  /// Writes descriptor `index` as-is (for malformed chains).
  public func writeDescriptor(_ index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16, table: UInt64? = nil) {
    let base = (table ?? descriptorTable) + 16 * UInt64(index)
    memory.put(address, at: base)
    memory.put(length, at: base + 8)
    memory.put(flags, at: base + 12)
    memory.put(next, at: base + 14)
  }

  /// Publishes `head` in the available ring (no descriptor bookkeeping).
  public mutating func publish(head: UInt16) {
    memory.put(head, at: availableRing + 4 + 2 * UInt64(availableIndex % size))
    availableIndex &+= 1
    atomicMemoryFence(ordering: .releasing)
    memory.put(availableIndex, at: availableRing + 2)
  }

  /// Sets the available index directly (for malformed rings).
  public func setAvailableIndex(_ value: UInt16) { try! memory.store(value, at: availableRing + 2) }

  /// Posts `buffers` as one chain; with `indirect`, through an indirect table allocated from
  /// `allocator`. Returns the head, or nil when the ring has no free descriptors.
  @discardableResult
  public mutating func post(_ buffers: [Buffer], indirect: Bool = false, allocator: inout GuestAllocator) -> UInt16? {
    if indirect {
      guard let head = free.popLast() else { return nil }
      let table = allocator.allocate(16 * buffers.count, alignment: 16)
      for (position, buffer) in buffers.enumerated() {
        let last = position == buffers.count - 1
        writeDescriptor(
          UInt16(position), address: buffer.address, length: buffer.length,
          flags: (buffer.isWritable ? VirtqDescriptorFlag.write : 0) | (last ? 0 : VirtqDescriptorFlag.next),
          next: last ? 0 : UInt16(position + 1), table: table)
      }
      writeDescriptor(head, address: table, length: UInt32(16 * buffers.count), flags: VirtqDescriptorFlag.indirect, next: 0)
      chains[head] = [head]
      publish(head: head)
      return head
    }
    guard buffers.count <= free.count, !buffers.isEmpty else { return nil }
    let indices = (0..<buffers.count).map { _ in free.popLast()! }
    for (position, buffer) in buffers.enumerated() {
      let last = position == buffers.count - 1
      writeDescriptor(
        indices[position], address: buffer.address, length: buffer.length,
        flags: (buffer.isWritable ? VirtqDescriptorFlag.write : 0) | (last ? 0 : VirtqDescriptorFlag.next),
        next: last ? 0 : indices[position + 1])
    }
    chains[indices[0]] = indices
    publish(head: indices[0])
    return indices[0]
  }

  /// available index at the last doorbell (``kickNeeded(eventIndex:)``).
  public private(set) var kickedIndex: UInt16 = 0

  /// Whether the device wants a doorbell for what was published since the last one, as Linux's
  /// virtqueue_kick_prepare decides: avail_event with EVENT_IDX, else VIRTQ_USED_F_NO_NOTIFY.
  /// Records the kick.
  public mutating func kickNeeded(eventIndex: Bool) -> Bool {
    atomicMemoryFence(ordering: .sequentiallyConsistent)
    let old = kickedIndex
    kickedIndex = availableIndex
    if eventIndex {
      let event = availableEvent
      return availableIndex &- event &- 1 < availableIndex &- old
    }
    return memory.get16(at: usedRing) & 1 == 0
  }

  /// The device's used index.
  public var usedIndex: UInt16 {
    atomicMemoryFence(ordering: .acquiring)
    return memory.get16(at: usedRing + 2)
  }

  /// The next used entry, if the device has returned one; frees its descriptors.
  public mutating func popUsed() -> (head: UInt16, length: UInt32)? {
    guard usedIndex != lastUsed else { return nil }
    atomicMemoryFence(ordering: .acquiring)
    let entry = usedRing + 4 + 8 * UInt64(lastUsed % size)
    let head = UInt16(truncatingIfNeeded: memory.get32(at: entry))
    let length = memory.get32(at: entry + 4)
    lastUsed &+= 1
    if let indices = chains.removeValue(forKey: head) { free.append(contentsOf: indices) }
    // Ask for an interrupt at the next used entry (what Linux does with EVENT_IDX).
    memory.put(lastUsed, at: availableRing + 4 + 2 * UInt64(size))
    return (head, length)
  }

  /// used_event (the driver's interrupt threshold with EVENT_IDX).
  public func setUsedEvent(_ value: UInt16) { try! memory.store(value, at: availableRing + 4 + 2 * UInt64(size)) }
  /// VIRTQ_AVAIL_F_NO_INTERRUPT.
  public func setNoInterrupt(_ on: Bool) { try! memory.store(UInt16(on ? 1 : 0), at: availableRing) }
  /// avail_event as the device last wrote it.
  public var availableEvent: UInt16 { memory.get16(at: usedRing + 4 + 8 * UInt64(size)) }
}

/// A guest driver for one virtio-pci function: config space and BAR accesses, feature negotiation,
/// queue setup, doorbells through the notify region.
public final class VirtioPCIDriverHarness {
  public let transport: VirtioPCITransport
  public let memory: GuestMemory
  public let interrupt: RecordingInterruptLine
  public var allocator: GuestAllocator
  public private(set) var queues: [MockVirtQueueDriver] = []
  /// Where BAR0 is.
  public private(set) var bar: UInt64 = 0

  /// Offsets of the regions inside BAR0, found by walking the capability list as a driver does.
  public private(set) var regions: [UInt8: UInt64] = [:]
  public private(set) var notifyMultiplier: UInt32 = 0

  public init(transport: VirtioPCITransport, memory: GuestMemory, interrupt: RecordingInterruptLine, allocator: GuestAllocator) {
    self.transport = transport
    self.memory = memory
    self.interrupt = interrupt
    self.allocator = allocator
    // Find the capabilities, enable memory decoding, read BAR0.
    var pointer = Int(transport.readConfig(offset: 0x34, size: 1))
    var visited = 0
    while pointer != 0 && visited < 48 {
      visited += 1
      if transport.readConfig(offset: pointer, size: 1) == UInt32(VirtioPCICapability.id) {
        let type = UInt8(transport.readConfig(offset: pointer + 3, size: 1))
        regions[type] = UInt64(transport.readConfig(offset: pointer + 8, size: 4))
        if type == 2 { notifyMultiplier = transport.readConfig(offset: pointer + 16, size: 4) }
      }
      pointer = Int(transport.readConfig(offset: pointer + 1, size: 1))
    }
    transport.writeConfig(offset: 4, size: 2, value: 0x6)  // memory space, bus master
    bar = UInt64(transport.readConfig(offset: 0x10, size: 4) & ~0xF) | UInt64(transport.readConfig(offset: 0x14, size: 4)) << 32
  }

  public func readCommon(_ offset: UInt64, size: Int) -> UInt64 {
    transport.readBAR(0, offset: (regions[VirtioPCICapability.common] ?? 0) + offset, size: size)
  }

  public func writeCommon(_ offset: UInt64, size: Int, value: UInt64) {
    transport.writeBAR(0, offset: (regions[VirtioPCICapability.common] ?? 0) + offset, size: size, value: value)
  }

  public func readDeviceConfig(_ offset: Int, size: Int) -> UInt64 {
    transport.readBAR(0, offset: (regions[VirtioPCICapability.device] ?? 0) + UInt64(offset), size: size)
  }

  /// Reads (and so clears) the ISR.
  public func readISR() -> UInt8 { UInt8(truncatingIfNeeded: transport.readBAR(0, offset: regions[VirtioPCICapability.isr] ?? 0, size: 1)) }

  public var status: UInt8 { UInt8(readCommon(VirtioPCICommonConfig.deviceStatus, size: 1)) }
  public func setStatus(_ value: UInt8) { writeCommon(VirtioPCICommonConfig.deviceStatus, size: 1, value: UInt64(value)) }

  public var deviceFeatures: UInt64 {
    writeCommon(VirtioPCICommonConfig.deviceFeatureSelect, size: 4, value: 0)
    let low = readCommon(VirtioPCICommonConfig.deviceFeature, size: 4)
    writeCommon(VirtioPCICommonConfig.deviceFeatureSelect, size: 4, value: 1)
    return low | readCommon(VirtioPCICommonConfig.deviceFeature, size: 4) << 32
  }

  /// Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the device kept FEATURES_OK.
  @discardableResult
  public func negotiate(features: UInt64? = nil) -> Bool {
    setStatus(0)
    setStatus(VirtioStatus.acknowledge)
    setStatus(VirtioStatus.acknowledge | VirtioStatus.driver)
    let wanted = features ?? deviceFeatures
    writeCommon(VirtioPCICommonConfig.driverFeatureSelect, size: 4, value: 0)
    writeCommon(VirtioPCICommonConfig.driverFeature, size: 4, value: wanted & 0xFFFF_FFFF)
    writeCommon(VirtioPCICommonConfig.driverFeatureSelect, size: 4, value: 1)
    writeCommon(VirtioPCICommonConfig.driverFeature, size: 4, value: wanted >> 32)
    setStatus(VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK)
    return status & VirtioStatus.featuresOK != 0
  }

  /// Lays out queue `index` with `size` entries and tells the device where it is.
  public func setUpQueue(_ index: Int, size: UInt16) {
    let queue = MockVirtQueueDriver(index: index, size: size, memory: memory, allocator: &allocator)
    writeCommon(VirtioPCICommonConfig.queueSelect, size: 2, value: UInt64(index))
    writeCommon(VirtioPCICommonConfig.queueSize, size: 2, value: UInt64(size))
    writeCommon(VirtioPCICommonConfig.queueDesc, size: 4, value: queue.descriptorTable & 0xFFFF_FFFF)
    writeCommon(VirtioPCICommonConfig.queueDesc + 4, size: 4, value: queue.descriptorTable >> 32)
    writeCommon(VirtioPCICommonConfig.queueDriver, size: 8, value: queue.availableRing)
    writeCommon(VirtioPCICommonConfig.queueDevice, size: 8, value: queue.usedRing)
    writeCommon(VirtioPCICommonConfig.queueEnable, size: 2, value: 1)
    while queues.count <= index { queues.append(queue) }
    queues[index] = queue
  }

  public func driverOK() {
    setStatus(status | VirtioStatus.driverOK)
  }

  /// Negotiates `features`, sets up `queueCount` queues of `size` and sets DRIVER_OK.
  public func start(features: UInt64? = nil, queueCount: Int, size: UInt16) {
    precondition(negotiate(features: features), "features refused")
    for index in 0..<queueCount { setUpQueue(index, size: size) }
    driverOK()
  }

  /// Rings queue `index`'s doorbell through the notify region.
  public func notify(_ index: Int) {
    let offset = (regions[VirtioPCICapability.notify] ?? 0) + UInt64(index) * UInt64(notifyMultiplier)
    transport.writeBAR(0, offset: offset, size: 2, value: UInt64(index))
  }

  /// Rings queue `index`'s doorbell only if the device asked for it; returns whether it rang.
  @discardableResult
  public func notifyIfNeeded(_ index: Int) -> Bool {
    let eventIndex = transport.negotiatedFeatures & VirtioFeature.ringEventIndex != 0
    guard queues[index].kickNeeded(eventIndex: eventIndex) else { return false }
    notify(index)
    return true
  }

  /// Posts a chain on queue `index`.
  @discardableResult
  public func post(_ index: Int, _ buffers: [MockVirtQueueDriver.Buffer], indirect: Bool = false) -> UInt16? {
    queues[index].post(buffers, indirect: indirect, allocator: &allocator)
  }

  public func popUsed(_ index: Int) -> (head: UInt16, length: UInt32)? { queues[index].popUsed() }

  /// Waits until `count` used entries are available on queue `index` (or `seconds` pass); reads
  /// the ISR on each interrupt as a driver does. Returns the entries.
  public func waitUsed(_ index: Int, count: Int, seconds: Double = 5) -> [(head: UInt16, length: UInt32)] {
    var result: [(head: UInt16, length: UInt32)] = []
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
    while result.count < count {
      while result.count < count, let entry = queues[index].popUsed() { result.append(entry) }
      if result.count >= count || DispatchTime.now().uptimeNanoseconds > deadline { break }
      if interrupt.wait(seconds: 0.05) { _ = readISR() }
    }
    return result
  }

  /// Allocates a guest buffer.
  public func allocate(_ size: Int, alignment: UInt64 = 64) -> UInt64 { allocator.allocate(size, alignment: alignment) }
}

/// Concrete little-endian accessors for the driver side (GuestMemory's generic ones are not
/// specialised across modules, which shows in the benchmark).
extension GuestMemory {
  public func put(_ value: UInt8, at address: UInt64) { try! slice(at: address, count: 1).storeBytes(of: value, as: UInt8.self) }
  public func put(_ value: UInt16, at address: UInt64) { try! slice(at: address, count: 2).storeBytes(of: value.littleEndian, as: UInt16.self) }
  public func put(_ value: UInt32, at address: UInt64) { try! slice(at: address, count: 4).storeBytes(of: value.littleEndian, as: UInt32.self) }
  public func put(_ value: UInt64, at address: UInt64) { try! slice(at: address, count: 8).storeBytes(of: value.littleEndian, as: UInt64.self) }
  public func get16(at address: UInt64) -> UInt16 { UInt16(littleEndian: try! slice(at: address, count: 2).loadUnaligned(as: UInt16.self)) }
  public func get32(at address: UInt64) -> UInt32 { UInt32(littleEndian: try! slice(at: address, count: 4).loadUnaligned(as: UInt32.self)) }
  public func get8(at address: UInt64) -> UInt8 { try! slice(at: address, count: 1).load(as: UInt8.self) }
}
