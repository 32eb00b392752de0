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
      FuzzQueues.setUp(&queues, &input, maxSize: queueSize)
    case 2:
      if let given = FuzzQueues.activation(queues, features: input.u8(), memory: memory) {
        console.activate(VirtioActivation(memory: memory, features: 0, queues: given, interrupt: interrupt))
      }
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
      FuzzQueues.publishChain(queues, &input, memory: memory, writableQueue: 0)
    }
    invariant(console.heldInputCount <= capacity, "console holds \(console.heldInputCount) bytes of input")
  }
  return 0
}
