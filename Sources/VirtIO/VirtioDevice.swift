import GuestMemory
import FirmwareCore

/// What a device gets when the driver sets DRIVER_OK: the negotiated features, its queues (ready
/// ones validated) and the way back to the driver.
public struct VirtioActivation: Sendable {
  public let memory: GuestMemory
  public let features: UInt64
  public let queues: [VirtQueue]
  public let interrupt: VirtioInterrupt

  public init(memory: GuestMemory, features: UInt64, queues: [VirtQueue], interrupt: VirtioInterrupt) {
    self.memory = memory
    self.features = features
    self.queues = queues
    self.interrupt = interrupt
  }
}

/// How a device signals its driver. Tied to one activation: after a reset, signals from requests
/// of the earlier activation are dropped.
public struct VirtioInterrupt: Sendable {
  let signal: @Sendable (_ isr: UInt8, _ needsReset: Bool) -> Void

  public init(_ signal: @escaping @Sendable (_ isr: UInt8, _ needsReset: Bool) -> Void) {
    self.signal = signal
  }

  /// Used buffers were added.
  public func usedBuffers() { signal(VirtioISR.queue, false) }
  /// The device configuration changed.
  public func configurationChanged() { signal(VirtioISR.configuration, false) }
  /// The driver broke a queue: set DEVICE_NEEDS_RESET and tell it through a configuration interrupt.
  public func needsReset() { signal(VirtioISR.configuration, true) }
}

/// A virtio device model, independent of its transport (virtio-pci here).
///
/// The transport calls these from vCPU threads, and ``process(queue:)`` also from the I/O thread
/// (a doorbell KVM caught, ``VirtioPCITransport/doorbell(queue:)``); devices keep their state
/// behind their own lock and must not call back into the transport (``VirtioInterrupt``) while
/// holding it.
public protocol VirtioDevice: AnyObject, Sendable {
  var deviceType: VirtioDeviceType { get }
  /// Device-specific features offered (the transport adds VERSION_1, ACCESS_PLATFORM and the ring
  /// features).
  var features: UInt64 { get }
  var queueCount: Int { get }
  var maxQueueSize: UInt16 { get }
  /// Bytes of device-specific configuration.
  var configSize: Int { get }
  /// Reads `size` bytes of device configuration at `offset` (bounds already checked).
  func readConfig(offset: Int, size: Int) -> UInt64
  func writeConfig(offset: Int, size: Int, value: UInt64)
  /// The driver set DRIVER_OK.
  func activate(_ activation: VirtioActivation)
  /// The driver notified queue `queue`.
  func process(queue: Int)
  /// The driver reset the device: drop the queues; completions still in flight must be dropped.
  func reset()
  /// Whether nothing the driver gave before a reset is still being used by the host (a read may
  /// still be writing into guest buffers). Until then device_status reads non-zero after a reset,
  /// which drivers wait out (virtio 1.x, 4.1.4.3.2).
  var isQuiescent: Bool { get }
}

extension VirtioDevice {
  public var isQuiescent: Bool { true }
}
