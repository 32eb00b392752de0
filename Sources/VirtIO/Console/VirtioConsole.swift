import Devices
import GuestMemory
import Synchronization

/// virtio-console (virtio 1.x, 5.3) with one port, hvc0: what the guest writes goes to the same
/// ``ConsoleOutput`` as the UART, and host input is delivered into its receive queue.
///
/// Queue 0 is receiveq (host to guest), queue 1 transmitq. Both are handled on the notifying
/// vCPU's thread: a console write costs no more than the UART's.
public final class VirtioConsole: VirtioDevice {
  public let deviceType = VirtioDeviceType.console
  public let features: UInt64 = 0
  public let queueCount = 2
  public let maxQueueSize: UInt16
  public let configSize = 12

  static let receiveQueue = 0
  static let transmitQueue = 1
  /// Host input held while the guest has no receive buffers.
  static let inputCapacity = 4096

  struct State {
    var memory: GuestMemory?
    var interrupt: VirtioInterrupt?
    var queues: [VirtQueue] = []
    var input: [UInt8] = []
    var broken = false
  }

  private let output: any ConsoleOutput
  private let state = Mutex(State())

  public init(output: any ConsoleOutput, queueSize: UInt16 = 64) {
    self.output = output
    maxQueueSize = queueSize
  }

  public func readConfig(offset: Int, size: Int) -> UInt64 {
    // cols, rows (0: unknown), max_nr_ports = 1, emerg_wr.
    let bytes: [UInt8] = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    guard offset >= 0, offset + size <= bytes.count else { return 0 }
    var value: UInt64 = 0
    for index in 0..<size { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
    return value
  }

  public func writeConfig(offset: Int, size: Int, value: UInt64) {
    if offset == 8 {  // emerg_wr: one character, straight out
      withUnsafeBytes(of: UInt8(truncatingIfNeeded: value)) { output.write($0) }
    }
  }

  public func activate(_ activation: VirtioActivation) {
    state.withLock { state in
      state.memory = activation.memory
      state.interrupt = activation.interrupt
      state.queues = activation.queues
      state.broken = false
    }
    deliverInput()
  }

  public func reset() {
    state.withLock { state in
      state.memory = nil
      state.interrupt = nil
      state.queues = []
      state.broken = false
    }
  }

  public func process(queue: Int) {
    if queue == Self.transmitQueue { transmit() } else if queue == Self.receiveQueue { deliverInput() }
  }

  /// Queues host input for the guest; returns how many bytes were taken.
  @discardableResult
  public func receive(_ bytes: some Collection<UInt8>) -> Int {
    let taken = state.withLock { state -> Int in
      let room = max(0, Self.inputCapacity - state.input.count)
      state.input.append(contentsOf: bytes.prefix(room))
      return min(room, bytes.count)
    }
    deliverInput()
    return taken
  }

  private func transmit() {
    var pieces: [[UInt8]] = []
    let (interrupt, failed) = state.withLock { state -> (VirtioInterrupt?, Bool) in
      guard let memory = state.memory, !state.broken, Self.transmitQueue < state.queues.count else { return (nil, false) }
      var notify = false
      do {
        while true {
          while let chain = try state.queues[Self.transmitQueue].pop(memory: memory) {
            for descriptor in chain.descriptors where !descriptor.isWritable && descriptor.length > 0 {
              if let bytes = try? memory.read(at: descriptor.address, count: Int(descriptor.length)) {
                pieces.append(bytes)
              }
            }
            try state.queues[Self.transmitQueue].addUsed(memory: memory, head: chain.head, length: 0)
            notify = try state.queues[Self.transmitQueue].needsNotification(memory: memory) || notify
          }
          if try !state.queues[Self.transmitQueue].enableNotification(memory: memory) { break }
        }
      } catch {
        state.broken = true
        return (state.interrupt, true)
      }
      return (notify ? state.interrupt : nil, false)
    }
    for piece in pieces { piece.withUnsafeBytes { output.write($0) } }
    if failed { interrupt?.needsReset() } else { interrupt?.usedBuffers() }
  }

  private func deliverInput() {
    let (interrupt, failed) = state.withLock { state -> (VirtioInterrupt?, Bool) in
      guard let memory = state.memory, !state.broken, !state.input.isEmpty, Self.receiveQueue < state.queues.count,
        state.queues[Self.receiveQueue].isReady
      else { return (nil, false) }
      var notify = false
      do {
        while !state.input.isEmpty, let chain = try state.queues[Self.receiveQueue].pop(memory: memory) {
          var written = 0
          for descriptor in chain.descriptors where descriptor.isWritable && written < state.input.count {
            let count = min(Int(descriptor.length), state.input.count - written)
            if (try? memory.write(Array(state.input[written..<(written + count)]), at: descriptor.address)) == nil { break }
            written += count
          }
          state.input.removeFirst(written)
          try state.queues[Self.receiveQueue].addUsed(memory: memory, head: chain.head, length: UInt32(written))
          notify = try state.queues[Self.receiveQueue].needsNotification(memory: memory) || notify
        }
        _ = try state.queues[Self.receiveQueue].enableNotification(memory: memory)
      } catch {
        state.broken = true
        return (state.interrupt, true)
      }
      return (notify ? state.interrupt : nil, false)
    }
    if failed { interrupt?.needsReset() } else { interrupt?.usedBuffers() }
  }
}
