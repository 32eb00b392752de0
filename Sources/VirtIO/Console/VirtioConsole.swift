import Devices
import GuestMemory
import Synchronization
import FirmwareCore

/// virtio-console (virtio 1.x, 5.3) with one port, hvc0: what the guest writes goes to the same
/// ``ConsoleOutput`` as the UART, and host input is delivered into its receive queue.
///
/// Queue 0 is receiveq (host to guest), queue 1 transmitq. Both are handled on the thread that
/// rings the doorbell (the I/O thread when KVM catches it, else the vCPU's), with no further hop.
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
  /// The most guest output handed to the ``ConsoleOutput`` in one write.
  public static let outputChunk = 64 << 10

  struct State {
    var device = VirtioDeviceState()
    var input: [UInt8] = []
  }

  private let output: any ConsoleOutput
  private let state = Mutex(State())
  /// Held while a vCPU sends output: chains go out whole and in order, and the state lock is not
  /// held across a write to the output (which can block on a slow terminal).
  private let transmitting = Mutex(())

  public init(output: any ConsoleOutput, queueSize: UInt16 = 64) {
    self.output = output
    maxQueueSize = queueSize
  }

  public func readConfig(offset: Int, size: Int) -> UInt64 {
    // cols, rows (0: unknown), max_nr_ports = 1, emerg_wr.
    let bytes: [UInt8] = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    return bytes.unsignedInteger(at: offset, width: size) ?? 0
  }

  public func writeConfig(offset: Int, size: Int, value: UInt64) {
    if offset == 8 {  // emerg_wr: one character, straight out
      withUnsafeBytes(of: UInt8(truncatingIfNeeded: value)) { output.write($0) }
    }
  }

  public func activate(_ activation: VirtioActivation) {
    state.withLock { $0.device.activate(activation) }
    deliverInput()
  }

  public func reset() {
    state.withLock { $0.device.reset() }
  }

  public func process(queue: Int) {
    if queue == Self.transmitQueue { transmit() } else if queue == Self.receiveQueue { deliverInput() }
  }

  /// Host input held for the guest (never more than ``inputCapacity``; checked by the fuzzer).
  var heldInputCount: Int { state.withLock { $0.input.count } }

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

  /// Sends what the guest queued on transmitq to the output, one chain at a time, straight from
  /// guest memory in pieces of at most ``outputChunk`` bytes: a chain's length is the guest's to
  /// choose (up to all of its RAM), so nothing of its size is allocated here.
  private func transmit() {
    transmitting.withLock { _ in
      answerChains(on: Self.transmitQueue, of: state, device: \.device) { chain, memory in
        var reader = DescriptorChainReader(chain, memory: memory)
        while let piece = reader.next(limit: Self.outputChunk) { output.write(piece) }
        return 0
      }
    }
  }

  private func deliverInput() {
    var failure: VirtioInterrupt?
    let interrupt = state.withLock { state -> VirtioInterrupt? in
      guard !state.input.isEmpty, let memory = state.device.memory(forQueue: Self.receiveQueue, ready: true) else {
        return nil
      }
      var notify = false
      do {
        while !state.input.isEmpty, let chain = try state.device.queues[Self.receiveQueue].pop(memory: memory) {
          var writer = DescriptorChainWriter(chain, memory: memory)
          state.input.removeFirst(writer.write(state.input))
          try state.device.queues[Self.receiveQueue].addUsed(memory: memory, head: chain.head, length: writer.written)
          notify = try state.device.queues[Self.receiveQueue].needsNotification(memory: memory) || notify
        }
        _ = try state.device.queues[Self.receiveQueue].enableNotification(memory: memory)
      } catch {
        failure = state.device.markBroken()
        return nil
      }
      return notify ? state.device.interrupt : nil
    }
    if let failure { return failure.needsReset() }
    interrupt?.usedBuffers()
  }
}
