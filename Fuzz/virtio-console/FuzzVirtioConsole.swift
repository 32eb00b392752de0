// libFuzzer entry for virtio-console (`Scripts/fuzz-devices --target virtio-console`): arbitrary
// rings and descriptor chains on both queues (receiveq 0, transmitq 1), host input interleaved,
// notifications, configuration accesses, resets and re-activations, over 4 MiB of guest RAM.
//
// Input: [0] log2 of the console's queue size (0...8), then a sequence of operations, each an op
// byte then its arguments:
//   0 RAM write     offset (u32), count n (u8), n bytes
//   1 queue setup   queue (0/1), size (u16), descriptor table, available, used ring (u32 each, see
//                   FuzzRAM.address), ready (u8)
//   2 activate      features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC); queues validated as the
//                   transport does (an invalid ready queue: no activation, as with NEEDS_RESET)
//   3 notify        queue (0, 1, or 2: none)
//   4 host input    count (u16 % 8192), bytes (repeated from the input when it runs short)
//   5 reset
//   6 config        offset, size (within the 12 bytes, as the transport checks), write?, value
//   7 chain         queue, head index; writes one descriptor and publishes it in the available ring
// Invariants: held host input never exceeds the console's capacity and input past it is refused;
// no single output write exceeds the output chunk; config reads return values of the access size.
@testable import VirtIO
import GuestMemory

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  FuzzRAM.reset()
  let memory = FuzzRAM.memory
  var input = FuzzInput(data, size)
  let output = CountingOutput(chunkLimit: VirtioConsole.outputChunk)
  let queueSize = UInt16(1) << UInt16(input.u8() % 9)
  let console = VirtioConsole(output: output, queueSize: queueSize)
  var queues = [VirtQueue(maxSize: queueSize), VirtQueue(maxSize: queueSize)]
  let interrupt = VirtioInterrupt { _, _ in }
  let capacity = VirtioConsole.inputCapacity

  while !input.isAtEnd {
    switch input.u8() % 8 {
    case 0:
      let offset = input.u32()
      FuzzRAM.write(input.take(Int(input.u8())), offset: offset)
    case 1:
      let q = Int(input.u8() & 1)
      queues[q] = VirtQueue(maxSize: queueSize)
      queues[q].size = input.u16()
      queues[q].descriptorTable = FuzzRAM.address(input.u32())
      queues[q].availableRing = FuzzRAM.address(input.u32())
      queues[q].usedRing = FuzzRAM.address(input.u32())
      queues[q].isReady = input.u8() & 1 == 1
    case 2:
      let features = input.u8()
      var given = queues
      var valid = true
      for index in given.indices {
        given[index].eventIndex = features & 1 != 0
        given[index].indirect = features & 2 != 0
        if given[index].isReady && !given[index].isValid(memory: memory) { valid = false }
      }
      if valid { console.activate(VirtioActivation(memory: memory, features: 0, queues: given, interrupt: interrupt)) }
    case 3:
      console.process(queue: Int(input.u8() % 3))
    case 4:
      let count = Int(input.u16() % 8192)
      let piece = input.take(count)
      let bytes = piece.isEmpty ? [UInt8](repeating: 0x41, count: count) : (0..<count).map { piece[piece.startIndex + $0 % piece.count] }
      let held = console.heldInputCount
      let taken = console.receive(bytes)
      invariant(taken == min(count, capacity - held), "receive took \(taken) of \(count) with \(held) held")
    case 5:
      console.reset()
    case 6:
      let offset = Int(input.u8() % 12)
      let size = min(input.accessSize(), 12 - offset)
      if input.u8() & 1 == 0 {
        checkRead(console.readConfig(offset: offset, size: size), size: size, "config \(offset)")
      } else {
        console.writeConfig(offset: offset, size: size, value: input.u64())
      }
    default:
      // A well-formed step for the fuzzer to start from: descriptor `head` -> a buffer in RAM,
      // published in the queue's available ring.
      let q = Int(input.u8() & 1)
      let queue = queues[q]
      guard queue.size > 0, queue.size & (queue.size - 1) == 0 else { break }
      let head = input.u16() % queue.size
      let length = UInt32(input.u16())
      let buffer = FuzzRAM.address(input.u32() & 0x3F_FFFF)
      var descriptor: [UInt8] = []
      for shift in stride(from: 0, to: 64, by: 8) { descriptor.append(UInt8(truncatingIfNeeded: buffer >> UInt64(shift))) }
      for shift in stride(from: 0, to: 32, by: 8) { descriptor.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
      descriptor += [q == 0 ? 2 : 0, 0, 0, 0]  // flags: WRITE on receiveq; next 0
      _ = try? memory.write(descriptor, at: queue.descriptorTable &+ 16 &* UInt64(head))
      if let index = try? memory.load(UInt16.self, at: queue.availableRing &+ 2) {
        _ = try? memory.store(head, at: queue.availableRing &+ 4 &+ 2 &* UInt64(index % queue.size))
        _ = try? memory.store(index &+ 1, at: queue.availableRing &+ 2)
      }
    }
    invariant(console.heldInputCount <= capacity, "console holds \(console.heldInputCount) bytes of input")
  }
  return 0
}
