import GuestMemory
import Synchronization
import FirmwareCore

/// One buffer of a descriptor chain: guest address (already canonical), length, direction.
public struct VirtqDescriptor: Sendable, Equatable {
  public var address: UInt64
  public var length: UInt32
  /// Device-writable (the device fills it); otherwise device-readable.
  public var isWritable: Bool

  public init(address: UInt64, length: UInt32, isWritable: Bool) {
    self.address = address
    self.length = length
    self.isWritable = isWritable
  }
}

/// A request the driver made available: the head index (to return in the used ring) and its
/// buffers, indirect tables already flattened.
public struct DescriptorChain: Sendable, Equatable {
  public var head: UInt16
  public var descriptors: [VirtqDescriptor]

  public init(head: UInt16, descriptors: [VirtqDescriptor]) {
    self.head = head
    self.descriptors = descriptors
  }
}

/// Why a queue's rings could not be used. Each one is the driver's fault, and each leaves the VMM
/// running: the device marks itself NEEDS_RESET and stops using the queue.
public enum VirtQueueError: Error, Equatable, CustomStringConvertible {
  case notReady
  /// The available index moved further than the queue has entries.
  case availableIndexJump(available: UInt16, next: UInt16)
  case headOutOfRange(UInt16)
  case nextOutOfRange(UInt16)
  /// More descriptors than the queue (or indirect table) holds: a loop.
  case chainTooLong
  case nestedIndirect
  case indirectWithNext
  case indirectTableLength(UInt32)
  case indirectNotNegotiated
  case memory(GuestMemoryError)

  public var description: String {
    switch self {
    case .notReady: return "queue is not ready"
    case .availableIndexJump(let available, let next): return "available index \(available) is more than a queue ahead of \(next)"
    case .headOutOfRange(let index): return "chain head \(index) is outside the descriptor table"
    case .nextOutOfRange(let index): return "next descriptor \(index) is outside the descriptor table"
    case .chainTooLong: return "descriptor chain is longer than its table (a loop)"
    case .nestedIndirect: return "indirect descriptor inside an indirect table"
    case .indirectWithNext: return "indirect descriptor with NEXT set"
    case .indirectTableLength(let length): return "indirect table length \(length) is not a non-zero multiple of 16"
    case .indirectNotNegotiated: return "indirect descriptor without VIRTIO_F_INDIRECT_DESC"
    case .memory(let error): return error.description
    }
  }
}

/// A split virtqueue's state (virtio 1.x, 2.7), rust-vmm style: a plain value that takes guest
/// memory as a parameter. Every index, address and length read from the guest is validated; no
/// guest value can trap the process.
public struct VirtQueue: Sendable {
  public let maxSize: UInt16
  public var size: UInt16
  public var isReady = false
  public var descriptorTable: UInt64 = 0
  public var availableRing: UInt64 = 0
  public var usedRing: UInt64 = 0
  /// VIRTIO_F_EVENT_IDX negotiated: notifications are suppressed through used_event/avail_event.
  public var eventIndex = false
  /// VIRTIO_F_INDIRECT_DESC negotiated.
  public var indirect = false
  /// Applied to every guest address (clears a Realm's unprotected-alias bit).
  public var addressMask: UInt64 = .max

  public private(set) var nextAvailable: UInt16 = 0
  public private(set) var nextUsed: UInt16 = 0
  /// used.idx when the driver was last notified (event-index suppression).
  private var signalledUsed: UInt16 = 0

  public init(maxSize: UInt16) {
    self.maxSize = maxSize
    size = maxSize
  }

  /// Whether the size and ring addresses make a usable queue inside `memory`.
  public func isValid(memory: GuestMemory) -> Bool {
    guard isReady, size > 0, size <= maxSize, size & (size - 1) == 0 else { return false }
    let count = UInt64(size)
    let areas: [(UInt64, UInt64, UInt64)] = [
      (descriptorTable & addressMask, 16 * count, 16),
      (availableRing & addressMask, 6 + 2 * count, 2),
      (usedRing & addressMask, 6 + 8 * count, 4),
    ]
    return areas.allSatisfy { address, length, alignment in
      address % alignment == 0 && memory.region(containing: address, count: length) != nil
    }
  }

  private var mask: UInt16 { size &- 1 }

  /// The next available chain, or nil when the driver has made none available.
  public mutating func pop(memory: GuestMemory) throws(VirtQueueError) -> DescriptorChain? {
    guard isReady, size > 0 else { throw .notReady }
    let available = try load(UInt16.self, at: availableRing &+ 2, memory)
    let pending = available &- nextAvailable
    guard pending != 0 else { return nil }
    guard pending <= size else { throw .availableIndexJump(available: available, next: nextAvailable) }
    atomicMemoryFence(ordering: .acquiring)  // read the ring entry after the index
    let slot = UInt64(nextAvailable & mask)
    let head = try load(UInt16.self, at: availableRing &+ 4 &+ 2 &* slot, memory)
    nextAvailable &+= 1
    return DescriptorChain(head: head, descriptors: try walk(head: head, memory))
  }

  private struct RawDescriptor {
    var address: UInt64
    var length: UInt32
    var flags: UInt16
    var next: UInt16
  }

  private func readDescriptor(table: UInt64, index: UInt16, _ memory: GuestMemory) throws(VirtQueueError) -> RawDescriptor {
    let base = table &+ 16 &* UInt64(index)
    do {
      let bytes = try memory.slice(at: base & addressMask, count: 16)
      return RawDescriptor(
        address: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
        length: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
        flags: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt16.self)),
        next: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
    } catch {
      throw .memory(error)
    }
  }

  private func walk(head: UInt16, _ memory: GuestMemory) throws(VirtQueueError) -> [VirtqDescriptor] {
    guard head < size else { throw .headOutOfRange(head) }
    var result: [VirtqDescriptor] = []
    var index = head
    var count = 0
    while true {
      count += 1
      guard count <= Int(size) else { throw .chainTooLong }
      let descriptor = try readDescriptor(table: descriptorTable, index: index, memory)
      if descriptor.flags & VirtqDescriptorFlag.indirect != 0 {
        guard indirect else { throw .indirectNotNegotiated }
        guard descriptor.flags & VirtqDescriptorFlag.next == 0 else { throw .indirectWithNext }
        try walkIndirect(descriptor, into: &result, memory)
        return result
      }
      result.append(VirtqDescriptor(
        address: descriptor.address & addressMask, length: descriptor.length,
        isWritable: descriptor.flags & VirtqDescriptorFlag.write != 0))
      guard descriptor.flags & VirtqDescriptorFlag.next != 0 else { return result }
      guard descriptor.next < size else { throw .nextOutOfRange(descriptor.next) }
      index = descriptor.next
    }
  }

  private func walkIndirect(_ table: RawDescriptor, into result: inout [VirtqDescriptor], _ memory: GuestMemory) throws(VirtQueueError) {
    guard table.length > 0, table.length % 16 == 0, table.length / 16 <= UInt32(UInt16.max) else {
      throw .indirectTableLength(table.length)
    }
    let entries = UInt16(table.length / 16)
    guard memory.region(containing: table.address & addressMask, count: UInt64(table.length)) != nil else {
      throw .memory(.outOfRange(address: table.address, length: UInt64(table.length)))
    }
    var index: UInt16 = 0
    var count = 0
    while true {
      count += 1
      guard count <= Int(entries) else { throw .chainTooLong }
      let descriptor = try readDescriptor(table: table.address, index: index, memory)
      guard descriptor.flags & VirtqDescriptorFlag.indirect == 0 else { throw .nestedIndirect }
      result.append(VirtqDescriptor(
        address: descriptor.address & addressMask, length: descriptor.length,
        isWritable: descriptor.flags & VirtqDescriptorFlag.write != 0))
      guard descriptor.flags & VirtqDescriptorFlag.next != 0 else { return }
      guard descriptor.next < entries else { throw .nextOutOfRange(descriptor.next) }
      index = descriptor.next
    }
  }

  /// Returns chain `head` to the driver with `length` bytes written into its buffers.
  public mutating func addUsed(memory: GuestMemory, head: UInt16, length: UInt32) throws(VirtQueueError) {
    guard isReady, size > 0 else { throw .notReady }
    let slot = UInt64(nextUsed & mask)
    let entry = usedRing &+ 4 &+ 8 &* slot
    try store(UInt32(head), at: entry, memory)
    try store(length, at: entry &+ 4, memory)
    nextUsed &+= 1
    atomicMemoryFence(ordering: .releasing)  // the entry before the index
    try store(nextUsed, at: usedRing &+ 2, memory)
  }

  /// Whether the driver wants an interrupt for the used entries added since the last one
  /// (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with VIRTIO_F_EVENT_IDX).
  public mutating func needsNotification(memory: GuestMemory) throws(VirtQueueError) -> Bool {
    atomicMemoryFence(ordering: .sequentiallyConsistent)  // used.idx visible before reading the driver's wish
    if eventIndex {
      let usedEvent = try load(UInt16.self, at: availableRing &+ 4 &+ 2 &* UInt64(size), memory)
      defer { signalledUsed = nextUsed }
      // vring_need_event: notify when used_event lies in [old, new).
      return nextUsed &- usedEvent &- 1 < nextUsed &- signalledUsed
    }
    let flags = try load(UInt16.self, at: availableRing, memory)
    return flags & 1 == 0
  }

  /// Asks the driver to notify again after it adds past what was consumed (avail_event with
  /// VIRTIO_F_EVENT_IDX); returns whether more chains arrived meanwhile, so the caller pops again.
  public mutating func enableNotification(memory: GuestMemory) throws(VirtQueueError) -> Bool {
    if eventIndex {
      try store(nextAvailable, at: usedRing &+ 4 &+ 8 &* UInt64(size), memory)
    } else {
      try store(UInt16(0), at: usedRing, memory)
    }
    atomicMemoryFence(ordering: .sequentiallyConsistent)
    let available = try load(UInt16.self, at: availableRing &+ 2, memory)
    return available != nextAvailable
  }

  /// Asks the driver to notify when it adds a chain beyond those already available, including any
  /// given back with ``undoPop()`` (avail_event at the driver's current index with
  /// VIRTIO_F_EVENT_IDX): for a device that needs more room than the available chains give.
  public mutating func enableNotificationForMore(memory: GuestMemory) throws(VirtQueueError) {
    if eventIndex {
      let available = try load(UInt16.self, at: availableRing &+ 2, memory)
      try store(available, at: usedRing &+ 4 &+ 8 &* UInt64(size), memory)
    } else {
      try store(UInt16(0), at: usedRing, memory)
    }
    atomicMemoryFence(ordering: .sequentiallyConsistent)
  }

  /// Tells the driver it need not notify (the device will look at the ring anyway, e.g. when its
  /// requests in flight complete): avail_event behind the index with VIRTIO_F_EVENT_IDX, else
  /// VIRTQ_USED_F_NO_NOTIFY. Only a hint: the driver may still notify.
  public mutating func disableNotification(memory: GuestMemory) throws(VirtQueueError) {
    if eventIndex {
      try store(nextAvailable &- 1, at: usedRing &+ 4 &+ 8 &* UInt64(size), memory)
    } else {
      try store(UInt16(1), at: usedRing, memory)
    }
  }

  /// Gives a chain back unconsumed (the next pop returns it again).
  public mutating func undoPop() { nextAvailable &-= 1 }

  // Concrete (non-generic) accessors: GuestMemory's generic ones are not specialised across the
  // module boundary, and the ring is touched several times per request.
  private func load(_ type: UInt16.Type, at address: UInt64, _ memory: GuestMemory) throws(VirtQueueError) -> UInt16 {
    do {
      let bytes = try memory.slice(at: address & addressMask, count: 2)
      return UInt16(littleEndian: bytes.loadUnaligned(as: UInt16.self))
    } catch {
      throw .memory(error)
    }
  }

  private func store(_ value: UInt16, at address: UInt64, _ memory: GuestMemory) throws(VirtQueueError) {
    do {
      try memory.slice(at: address & addressMask, count: 2).storeBytes(of: value.littleEndian, as: UInt16.self)
    } catch {
      throw .memory(error)
    }
  }

  private func store(_ value: UInt32, at address: UInt64, _ memory: GuestMemory) throws(VirtQueueError) {
    do {
      try memory.slice(at: address & addressMask, count: 4).storeBytes(of: value.littleEndian, as: UInt32.self)
    } catch {
      throw .memory(error)
    }
  }
}
