import GuestMemory

/// What every device keeps of its driver between DRIVER_OK and reset (the virtio core the devices
/// share): the activation (guest memory, negotiated features, queues, interrupt), whether the
/// driver broke a ring, and a generation that each activation and reset bumps, so that work taken
/// before one is not answered after it. A device holds it inside its own lock.
public struct VirtioDeviceState: Sendable {
  public private(set) var memory: GuestMemory?
  public private(set) var interrupt: VirtioInterrupt?
  /// The features the driver accepted.
  public private(set) var features: UInt64 = 0
  public var queues: [VirtQueue] = []
  /// The driver broke a ring: the queues go unused until it resets the device.
  public private(set) var isBroken = false
  public private(set) var generation: UInt64 = 0

  public init() {}

  /// The driver set DRIVER_OK.
  public mutating func activate(_ activation: VirtioActivation) {
    memory = activation.memory
    interrupt = activation.interrupt
    features = activation.features
    queues = activation.queues
    isBroken = false
    generation &+= 1
  }

  /// The driver reset the device.
  public mutating func reset() {
    memory = nil
    interrupt = nil
    features = 0
    queues = []
    isBroken = false
    generation &+= 1
  }

  /// Guest memory, when queue `index` may be used: the device is active and not broken, and the
  /// queue exists (and, with `ready`, the driver enabled it).
  public func memory(forQueue index: Int, ready: Bool = false) -> GuestMemory? {
    guard let memory, !isBroken, index >= 0, index < queues.count, !ready || queues[index].isReady else { return nil }
    return memory
  }

  /// Whether work taken in generation `generation` on queue `index` may still be answered.
  public func isCurrent(_ generation: UInt64, queue index: Int) -> Bool {
    self.generation == generation && !isBroken && index >= 0 && index < queues.count
  }

  /// The driver broke a ring (a ``VirtQueueError``): marks the device broken and returns the
  /// interrupt on which to signal ``VirtioInterrupt/needsReset()``, outside the device's lock.
  public mutating func markBroken() -> VirtioInterrupt? {
    isBroken = true
    return interrupt
  }
}
