import Devices
import GuestMemory
import Synchronization
import FirmwareCore

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
  /// The most guest output handed to the ``ConsoleOutput`` in one write.
  public static let outputChunk = 64 << 10

  struct State {
    var memory: GuestMemory?
    var interrupt: VirtioInterrupt?
    var queues: [VirtQueue] = []
    var input: [UInt8] = []
    var broken = false
    /// Bumped by every activation and reset: a chain taken before one is not answered after it.
    var generation: UInt64 = 0
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
    state.withLock { state in
      state.memory = activation.memory
      state.interrupt = activation.interrupt
      state.queues = activation.queues
      state.broken = false
      state.generation &+= 1
    }
    deliverInput()
  }

  public func reset() {
    state.withLock { state in
      state.memory = nil
      state.interrupt = nil
      state.queues = []
      state.broken = false
      state.generation &+= 1
    }
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
      var notify = false
      var interrupt: VirtioInterrupt?
      while true {
        // Take one chain (or, with none left, re-arm the notification and look once more).
        let next = state.withLock { state -> TransmitStep in
          guard let memory = state.memory, !state.broken, Self.transmitQueue < state.queues.count else { return .done }
          interrupt = state.interrupt
          do {
            if let chain = try state.queues[Self.transmitQueue].pop(memory: memory) {
              let pieces = chain.descriptors.compactMap { descriptor -> UnsafeRawBufferPointer? in
                guard !descriptor.isWritable, descriptor.length > 0,
                  let bytes = try? memory.slice(at: descriptor.address, count: Int(descriptor.length))
                else { return nil }
                return UnsafeRawBufferPointer(bytes)
              }
              return .chain(head: chain.head, pieces: pieces, memory: memory, generation: state.generation)
            }
            return try state.queues[Self.transmitQueue].enableNotification(memory: memory) ? .again : .done
          } catch {
            state.broken = true
            return .failed
          }
        }
        switch next {
        case .done:
          if notify { interrupt?.usedBuffers() }
          return
        case .failed:
          interrupt?.needsReset()
          return
        case .again:
          continue
        case .chain(let head, let pieces, let memory, let generation):
          for piece in pieces {
            var offset = 0
            while offset < piece.count {
              let count = min(Self.outputChunk, piece.count - offset)
              output.write(UnsafeRawBufferPointer(rebasing: piece[offset..<(offset + count)]))
              offset += count
            }
          }
          let failed = state.withLock { state -> Bool in
            guard state.generation == generation, !state.broken else { return false }
            do {
              try state.queues[Self.transmitQueue].addUsed(memory: memory, head: head, length: 0)
              notify = try state.queues[Self.transmitQueue].needsNotification(memory: memory) || notify
              return false
            } catch {
              state.broken = true
              return true
            }
          }
          if failed {
            interrupt?.needsReset()
            return
          }
        }
      }
    }
  }

  /// One step of ``transmit()``.
  private enum TransmitStep {
    case chain(head: UInt16, pieces: [UnsafeRawBufferPointer], memory: GuestMemory, generation: UInt64)
    case again, done, failed
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
