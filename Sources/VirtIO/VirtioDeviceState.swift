import GuestMemory
import Synchronization

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

/// Answers the chains the driver queued on `queue`, one at a time and in order, each by `answer`
/// outside the device's lock (it may block: a write to a slow terminal, a file operation), which
/// returns the used length; a chain taken before a reset is not answered after it. With none left
/// it re-arms the notification and looks once more, then signals the driver once for the batch.
/// A ring the driver broke sets NEEDS_RESET. The console's transmitq and virtio-9p's requests.
///
/// `device` is where the device's ``VirtioDeviceState`` lies in what `state` guards; with `ready`,
/// only a queue the driver enabled is used.
func answerChains<State>(
  on queue: Int, ready: Bool = false, of state: borrowing Mutex<State>,
  device: WritableKeyPath<State, VirtioDeviceState> & Sendable, _ answer: (DescriptorChain, GuestMemory) -> UInt32
) {
  var notify = false
  var interrupt: VirtioInterrupt?
  while true {
    var failure: VirtioInterrupt?
    let next = state.withLock { guarded -> (DescriptorChain, GuestMemory, UInt64)?? in
      guard let memory = guarded[keyPath: device].memory(forQueue: queue, ready: ready) else { return .some(nil) }
      interrupt = guarded[keyPath: device].interrupt
      do {
        if let chain = try guarded[keyPath: device].queues[queue].pop(memory: memory) {
          return (chain, memory, guarded[keyPath: device].generation)
        }
        // nil: look again (more came while re-arming); .some(nil): done.
        return try guarded[keyPath: device].queues[queue].enableNotification(memory: memory) ? nil : .some(nil)
      } catch {
        failure = guarded[keyPath: device].markBroken()
        return .some(nil)
      }
    }
    if let failure { return failure.needsReset() }
    guard let step = next else { continue }
    guard let (chain, memory, generation) = step else {
      if notify { interrupt?.usedBuffers() }
      return
    }
    let length = answer(chain, memory)
    state.withLock { guarded in
      guard guarded[keyPath: device].isCurrent(generation, queue: queue) else { return }
      do {
        try guarded[keyPath: device].queues[queue].addUsed(memory: memory, head: chain.head, length: length)
        notify = try guarded[keyPath: device].queues[queue].needsNotification(memory: memory) || notify
      } catch {
        failure = guarded[keyPath: device].markBroken()
      }
    }
    if let failure { return failure.needsReset() }
  }
}
