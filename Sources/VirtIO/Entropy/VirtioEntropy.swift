import FirmwareCore
import GuestMemory
import Platform
import Synchronization

/// virtio-rng, the entropy device (virtio 1.x, 5.4): each buffer the driver posts on its one queue
/// comes back filled from the host's getrandom(2). A Realm's guest has no other entropy device.
///
/// Requests are answered on the thread that rings the doorbell (the I/O thread, or the vCPU's):
/// getrandom does not block on a running host.
public final class VirtioEntropy: VirtioDevice {
  public let deviceType = VirtioDeviceType.entropy
  public let features: UInt64 = 0
  public let queueCount = 1
  public let maxQueueSize: UInt16
  public let configSize = 0

  static let requestQueue = 0
  /// The most bytes one request is given: Linux asks for at most a few pages at a time, and a
  /// larger buffer (up to all of guest RAM) is answered in part, as the device may (5.4.6).
  public static let maxRequestBytes = 64 << 10

  private let state = Mutex(VirtioDeviceState())
  /// Where the bytes come from: getrandom, or a test's source. Fills the buffer and returns how
  /// many bytes it filled.
  private let source: @Sendable (UnsafeMutableRawBufferPointer) -> Int

  public init(queueSize: UInt16 = 64, source: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Int = fillWithEntropy) {
    maxQueueSize = queueSize
    self.source = source
  }

  public func readConfig(offset: Int, size: Int) -> UInt64 { 0 }
  public func writeConfig(offset: Int, size: Int, value: UInt64) {}

  public func activate(_ activation: VirtioActivation) {
    state.withLock { $0.activate(activation) }
  }

  public func reset() {
    state.withLock { $0.reset() }
  }

  public func process(queue: Int) {
    guard queue == Self.requestQueue else { return }
    var failure: VirtioInterrupt?
    let interrupt = state.withLock { state -> VirtioInterrupt? in
      guard let memory = state.memory(forQueue: Self.requestQueue, ready: true) else { return nil }
      var notify = false
      do {
        repeat {
          while let chain = try state.queues[Self.requestQueue].pop(memory: memory) {
            var writer = DescriptorChainWriter(chain, memory: memory)
            while writer.written < Self.maxRequestBytes,
              writer.fill(limit: Self.maxRequestBytes - Int(writer.written), source) > 0
            {}
            try state.queues[Self.requestQueue].addUsed(memory: memory, head: chain.head, length: writer.written)
            notify = try state.queues[Self.requestQueue].needsNotification(memory: memory) || notify
          }
        } while try state.queues[Self.requestQueue].enableNotification(memory: memory)
      } catch {
        failure = state.markBroken()
        return nil
      }
      return notify ? state.interrupt : nil
    }
    if let failure { return failure.needsReset() }
    interrupt?.usedBuffers()
  }
}
