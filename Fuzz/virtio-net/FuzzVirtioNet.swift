// libFuzzer entry for virtio-net (`Scripts/fuzz-devices --target virtio-net`): the frame and header
// paths both ways. Arbitrary rings and chains on receiveq 0 and transmitq 1, frames from the host
// (a SOCK_SEQPACKET pair stands for the tap) interleaved, with and without mergeable receive
// buffers, resets and re-activations, over 4 MiB of guest RAM.
//
// Input: [0] log2 of the queue size (0...8), then a sequence of operations, each an op byte then
// its arguments:
//   0 RAM write     offset (u32), count n (u8), n bytes
//   1 queue setup   queue (0/1), size (u16), descriptor table, available, used ring (u32 each, see
//                   FuzzRAM.address), ready (u8)
//   2 activate      features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 MRG_RXBUF); queues
//                   validated as the transport does
//   3 notify        queue (0, 1, or 2: none)
//   4 host frame    count (u16 % 66000), bytes (repeated from the input when it runs short): sent
//                   on the host's end, then the device is told the backend is readable
//   5 reset
//   6 config        offset, size (within the 10 bytes), write?, value
//   7 chain         queue, head index; writes one descriptor and publishes it in the available ring
// Invariants: every frame the host receives is at most VirtioNet.maxFrameSize; config reads return
// values of the access size; the device's own preconditions and the VirtQueue's bounds hold.
@testable import VirtIO
import GuestMemory
import Platform

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  FuzzRAM.reset()
  let memory = FuzzRAM.memory
  var input = FuzzInput(data, size)
  let queueSize = UInt16(1) << UInt16(input.u8() % 9)
  let net = VirtioNet(backend: FuzzFrames.deviceEnd, mac: [0x52, 0x54, 0, 1, 2, 3], watch: { _ in {} }, queueSize: queueSize)
  FuzzFrames.drain()
  defer { net.reset() }
  var queues = [VirtQueue(maxSize: queueSize), VirtQueue(maxSize: queueSize)]
  let interrupt = VirtioInterrupt { _, _ in }

  while !input.isAtEnd {
    switch input.u8() % 8 {
    case 0:
      let offset = input.u32()
      FuzzRAM.write(input.take(Int(input.u8())), offset: offset)
    case 1:
      FuzzQueues.setUp(&queues, &input, maxSize: queueSize)
    case 2:
      let features = input.u8()
      let negotiated = features & 4 != 0 ? VirtioNet.Feature.mergeableReceiveBuffers : 0
      if let given = FuzzQueues.activation(queues, features: features, memory: memory) {
        net.activate(VirtioActivation(memory: memory, features: negotiated, queues: given, interrupt: interrupt))
      }
    case 3:
      net.process(queue: Int(input.u8() % 3))
      FuzzFrames.drain()
    case 4:
      let count = Int(input.u16()) % 66_000
      let piece = input.take(count)
      let bytes = piece.isEmpty ? [UInt8](repeating: 0x41, count: count) : (0..<count).map { piece[piece.startIndex + $0 % piece.count] }
      FuzzFrames.send(bytes)
      net.receive()
    case 5:
      net.reset()
    case 6:
      let offset = Int(input.u8() % 10)
      let size = min(input.accessSize(), 10 - offset)
      if input.u8() & 1 == 0 {
        checkRead(net.readConfig(offset: offset, size: size), size: size, "config \(offset)")
      } else {
        net.writeConfig(offset: offset, size: size, value: input.u64())
      }
    default:
      FuzzQueues.publishChain(queues, &input, memory: memory, writableQueue: 0)
    }
  }
  return 0
}

/// The host's end of the backend: a SOCK_SEQPACKET pair made once per process.
enum FuzzFrames {
  static let pair: (FileDescriptor, FileDescriptor) = {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
    var size: Int32 = 4 << 20
    for fd in fds { setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4); setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
    return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
  }()
  static var deviceEnd: FileDescriptor { pair.0 }

  static func send(_ frame: [UInt8]) {
    _ = frame.withUnsafeBytes { write(pair.1.rawValue, $0.baseAddress, $0.count) }
  }

  /// Reads what the guest sent (checking each frame's size) and discards frames the device left.
  static func drain() {
    var buffer = [UInt8](repeating: 0, count: 70_000)
    while true {
      let count = buffer.withUnsafeMutableBytes { read(pair.1.rawValue, $0.baseAddress, $0.count) }
      guard count >= 0 else { break }
      invariant(count <= VirtioNet.maxFrameSize, "a frame of \(count) bytes reached the host")
    }
    while buffer.withUnsafeMutableBytes({ read(pair.0.rawValue, $0.baseAddress, $0.count) }) >= 0 {}
  }
}
