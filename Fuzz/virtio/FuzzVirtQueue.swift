// libFuzzer entry for the virtqueue and the virtio-blk request parser (`Scripts/fuzz-devices
// --target virtio` builds it with `swiftc -sanitize=fuzzer,address` over the GuestMemory and VirtIO
// modules).
//
// Input: [0] log2 queue size, [1] flags (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), [2..<14] three
// little-endian u32 offsets of the descriptor table, available and used rings from the RAM base
// (any value: they may point outside RAM), [14...] the first bytes of guest RAM.
import GuestMemory
import VirtIO

let ramBase: UInt64 = 0x4000_0000
let ramSize = 64 << 10
let memory = try! GuestMemory(ranges: [(ramBase, UInt64(ramSize))])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  guard size >= 14 else { return 0 }
  let input = UnsafeBufferPointer(start: data, count: size)
  func u32(_ offset: Int) -> UInt64 {
    UInt64(input[offset]) | UInt64(input[offset + 1]) << 8 | UInt64(input[offset + 2]) << 16 | UInt64(input[offset + 3]) << 24
  }
  let ram = try! memory.slice(at: ramBase, count: ramSize)
  ram.initializeMemory(as: UInt8.self, repeating: 0)
  let contents = input[14...]
  _ = UnsafeMutableRawBufferPointer(rebasing: ram[0..<min(ramSize, contents.count)]).copyBytes(from: contents.prefix(ramSize))

  let queueSize = UInt16(1) << UInt16(input[0] % 16)  // up to 32768: larger than RAM holds, on purpose
  var queue = VirtQueue(maxSize: queueSize)
  queue.eventIndex = input[1] & 1 != 0
  queue.indirect = input[1] & 2 != 0
  queue.descriptorTable = ramBase &+ u32(2)
  queue.availableRing = ramBase &+ u32(6)
  queue.usedRing = ramBase &+ u32(10)
  queue.isReady = true
  _ = queue.isValid(memory: memory)

  for _ in 0..<64 {
    let chain: DescriptorChain?
    do {
      chain = try queue.pop(memory: memory)
    } catch {
      break  // the device would set NEEDS_RESET
    }
    guard let chain else {
      if (try? queue.enableNotification(memory: memory)) == true { continue }
      break
    }
    var status: UInt8 = 0
    if let request = try? BlockRequest.parse(chain.descriptors, readHeader: { address, buffer in (try? memory.read(at: address, into: buffer)) != nil }) {
      _ = request.type
      status = UInt8(truncatingIfNeeded: request.readableLength &+ request.writableLength)
      if request.readable.count == 1, request.readable[0].length == 16,
        let bytes = try? memory.read(at: request.readable[0].address, count: 16) {
        _ = BlockRange(bytes: bytes[...])
      }
      try? memory.store(status, at: request.status)
    }
    do {
      try queue.addUsed(memory: memory, head: chain.head, length: UInt32(status))
      _ = try queue.needsNotification(memory: memory)
      try queue.disableNotification(memory: memory)
    } catch {
      break
    }
  }
  return 0
}
