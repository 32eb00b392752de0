// What every device fuzz target shares (Scripts/fuzz-devices compiles this file into each one): the
// reader of the fuzz input, invariant checks that stop the run with a message, guest RAM that is
// zeroed between inputs, and host-side stand-ins (console output, interrupt line) that check what
// the device does with them.
import Devices
import GuestMemory
import Platform
import VirtIO

/// The fuzz input, read front to back; a read past its end gives zeros (so every prefix of an input
/// is a valid input, and inputs stay short).
struct FuzzInput {
  private let bytes: UnsafeBufferPointer<UInt8>
  private var position = 0

  init(_ data: UnsafePointer<UInt8>, _ size: Int) {
    bytes = UnsafeBufferPointer(start: data, count: size)
  }

  var isAtEnd: Bool { position >= bytes.count }

  mutating func u8() -> UInt8 {
    guard position < bytes.count else { return 0 }
    defer { position += 1 }
    return bytes[position]
  }

  /// `width` bytes, little-endian (width at most 8).
  mutating func le(_ width: Int) -> UInt64 {
    var value: UInt64 = 0
    for index in 0..<width { value |= UInt64(u8()) << (8 * UInt64(index)) }
    return value
  }

  mutating func u16() -> UInt16 { UInt16(le(2)) }
  mutating func u32() -> UInt32 { UInt32(le(4)) }
  mutating func u64() -> UInt64 { le(8) }

  /// Up to `count` bytes (fewer at the end of the input).
  mutating func take(_ count: Int) -> ArraySlice<UInt8> {
    let end = min(bytes.count, position + count)
    defer { position = max(position, end) }
    return position < end ? ArraySlice(bytes[position..<end]) : []
  }

  /// An MMIO access size: 1, 2, 4 or 8 (what an arm64 data abort can report).
  mutating func accessSize() -> Int { 1 << Int(u8() & 3) }
}

/// Stops the fuzzer with `message` when `condition` is false (also in -O builds, with the message).
func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
  if !condition() {
    let line = "invariant violated: \(message())\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    abort()
  }
}

/// The largest value an access of `size` bytes can return.
func accessMask(_ size: Int) -> UInt64 { size >= 8 ? .max : (1 << (UInt64(size) * 8)) - 1 }

/// Checks that a read of `size` bytes returned a value of that size.
func checkRead(_ value: UInt64, size: Int, _ what: @autoclosure () -> String) {
  invariant(value <= accessMask(size), "\(what()): read of \(size) bytes returned 0x\(String(value, radix: 16))")
}

/// 4 MiB of guest RAM at 1 GiB, mapped once and zeroed before each input (MADV_DONTNEED: only the
/// pages an input touched cost anything).
enum FuzzRAM {
  static let base: UInt64 = 0x4000_0000
  static let size: UInt64 = 4 << 20
  static let memory = try! GuestMemory(ranges: [(base, size)])

  static func reset() {
    for region in memory.regions {
      invariant(madvise(region.host, Int(region.size), MADV_DONTNEED) == 0, "madvise failed")
    }
  }

  /// A guest address from a fuzz value: inside RAM unless bit 31 is set (then any 32-bit address
  /// above the RAM base, mostly outside it).
  static func address(_ value: UInt32) -> UInt64 {
    value & 0x8000_0000 == 0 ? base + UInt64(value) % size : base &+ UInt64(value & 0x7FFF_FFFF) &* 8
  }

  /// Writes `bytes` at RAM offset `offset` (clipped to RAM).
  static func write(_ bytes: ArraySlice<UInt8>, offset: UInt32) {
    let start = UInt64(offset) % size
    let count = min(UInt64(bytes.count), size - start)
    try! memory.write(Array(bytes.prefix(Int(count))), at: base + start)
  }
}

/// A console output that only counts: what the guest sends must not be kept in host memory, and no
/// single write may exceed `chunkLimit` bytes.
final class CountingOutput: ConsoleOutput, @unchecked Sendable {
  let chunkLimit: Int
  var bytes = 0
  var writes = 0

  init(chunkLimit: Int) { self.chunkLimit = chunkLimit }

  func write(_ bytes: UnsafeRawBufferPointer) {
    invariant(bytes.count <= chunkLimit, "one output write of \(bytes.count) bytes (limit \(chunkLimit))")
    self.bytes += bytes.count
    writes += 1
  }
}

/// An INTx line that checks the device drives it only on a change of level.
final class CheckedLine: InterruptLine, @unchecked Sendable {
  var level = false
  var edges = 0

  func set(level: Bool) {
    invariant(level != self.level, "interrupt line set to its current level (\(level))")
    self.level = level
    edges += 1
  }
}

/// The queue operations the virtqueue device targets share (virtio-console's and virtio-net's op
/// bytes 1, 2 and 7).
enum FuzzQueues {
  /// Op 1: queue (0/1), size (u16), descriptor table, available, used ring (u32 each, see
  /// FuzzRAM.address), ready (u8): replaces that queue.
  static func setUp(_ queues: inout [VirtQueue], _ input: inout FuzzInput, maxSize: UInt16) {
    let q = Int(input.u8() & 1)
    queues[q] = VirtQueue(maxSize: maxSize)
    queues[q].size = input.u16()
    queues[q].descriptorTable = FuzzRAM.address(input.u32())
    queues[q].availableRing = FuzzRAM.address(input.u32())
    queues[q].usedRing = FuzzRAM.address(input.u32())
    queues[q].isReady = input.u8() & 1 == 1
  }

  /// Op 2's queues: `features` bit 0 EVENT_IDX, bit 1 INDIRECT_DESC; nil when a ready queue is
  /// invalid (no activation, as the transport sets NEEDS_RESET instead).
  static func activation(_ queues: [VirtQueue], features: UInt8, memory: GuestMemory) -> [VirtQueue]? {
    var given = queues
    for index in given.indices {
      given[index].eventIndex = features & 1 != 0
      given[index].indirect = features & 2 != 0
      if given[index].isReady && !given[index].isValid(memory: memory) { return nil }
    }
    return given
  }

  /// Op 7: queue, head index: a well-formed step for the fuzzer to start from, descriptor `head`
  /// pointing at a buffer in RAM (device-writable on `writableQueue`), published in the queue's
  /// available ring.
  static func publishChain(_ queues: [VirtQueue], _ input: inout FuzzInput, memory: GuestMemory, writableQueue: Int) {
    let q = Int(input.u8() & 1)
    let queue = queues[q]
    guard queue.size > 0, queue.size & (queue.size - 1) == 0 else { return }
    let head = input.u16() % queue.size
    let length = UInt32(input.u16())
    let buffer = FuzzRAM.address(input.u32() & 0x3F_FFFF)
    var descriptor: [UInt8] = []
    for shift in stride(from: 0, to: 64, by: 8) { descriptor.append(UInt8(truncatingIfNeeded: buffer >> UInt64(shift))) }
    for shift in stride(from: 0, to: 32, by: 8) { descriptor.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
    descriptor += [q == writableQueue ? 2 : 0, 0, 0, 0]  // flags: WRITE on the receive queue; next 0
    _ = try? memory.write(descriptor, at: queue.descriptorTable &+ 16 &* UInt64(head))
    if let index = try? memory.load(UInt16.self, at: queue.availableRing &+ 2) {
      _ = try? memory.store(head, at: queue.availableRing &+ 4 &+ 2 &* UInt64(index % queue.size))
      _ = try? memory.store(index &+ 1, at: queue.availableRing &+ 2)
    }
  }
}
