import Devices
import GuestMemory
import Synchronization
import FirmwareCore

/// The virtio-pci modern transport (virtio 1.x, 4.1): a PCI function with one 64-bit memory BAR
/// holding the common configuration, ISR, device configuration and notification regions, each
/// announced by a vendor-specific capability; interrupts through ISR and INTx.
public final class VirtioPCITransport: PCIFunction {
  /// BAR0's layout.
  public enum Layout {
    public static let barSize: UInt64 = 0x4000
    public static let common: UInt64 = 0x0000
    public static let isr: UInt64 = 0x1000
    public static let device: UInt64 = 0x2000
    public static let notify: UInt64 = 0x3000
    public static let notifyMultiplier: UInt32 = 4
    static let commonLength: UInt32 = VirtioPCICommonConfig.size
  }

  static let noVector: UInt16 = 0xFFFF

  struct State {
    var config: PCIConfigSpace
    var status: UInt8 = 0
    var deviceFeatureSelect: UInt32 = 0
    var driverFeatureSelect: UInt32 = 0
    var driverFeatures: UInt64 = 0
    var queueSelect: UInt16 = 0
    var queues: [VirtQueue]
    var isr: UInt8 = 0
    var level = false
    var configGeneration: UInt8 = 0
    /// Bumped on every reset: signals from an earlier activation are dropped.
    var generation: UInt64 = 0
    var active = false
    /// A reset happened and the device may still be finishing requests from before it.
    var resetPending = false
    /// Where the notification region decodes (nil: nowhere), as last reported to the observer.
    var notifyBase: UInt64?
    var notifyObserver: (@Sendable (UInt64?) -> Void)?
  }

  public let device: any VirtioDevice
  private let memory: GuestMemory
  private let interruptLine: (any InterruptLine)?
  /// Features this transport offers: the device's plus the transport and ring ones.
  public let offeredFeatures: UInt64
  private let requireAccessPlatform: Bool
  private let addressMask: UInt64
  private let state: Mutex<State>

  /// - Parameters:
  ///   - barAddress: where the VMM places BAR0 (the guest may move it).
  ///   - requireAccessPlatform: a Realm: the driver must accept VIRTIO_F_ACCESS_PLATFORM (it shares
  ///     buffers explicitly), or FEATURES_OK is refused.
  ///   - addressMask: applied to every address the driver gives (clears a Realm's shared bit).
  public init(
    device: any VirtioDevice, memory: GuestMemory, interrupt: (any InterruptLine)?, barAddress: UInt64,
    requireAccessPlatform: Bool = false, addressMask: UInt64 = .max
  ) {
    self.device = device
    self.memory = memory
    self.interruptLine = interrupt
    self.requireAccessPlatform = requireAccessPlatform
    self.addressMask = addressMask
    offeredFeatures = device.features | VirtioFeature.version1 | VirtioFeature.accessPlatform
      | VirtioFeature.ringIndirectDescriptors | VirtioFeature.ringEventIndex

    let type = device.deviceType
    var config = PCIConfigSpace(identity: Self.identity(type), interruptPin: 1)
    config.addMemoryBAR64(index: 0, size: Layout.barSize, address: barAddress)
    func capability(_ type: UInt8, offset: UInt64, length: UInt32, extra: [UInt8] = []) -> [UInt8] {
      let capLength = UInt8(16 + extra.count)
      return [capLength, type, 0, 0, 0, 0] + UInt32(offset).littleEndianBytes + length.littleEndianBytes + extra
    }
    config.addCapability(id: VirtioPCICapability.id, body: capability(VirtioPCICapability.common, offset: Layout.common, length: Layout.commonLength))
    config.addCapability(id: VirtioPCICapability.id, body: capability(
      VirtioPCICapability.notify, offset: Layout.notify, length: UInt32(max(1, device.queueCount)) * Layout.notifyMultiplier,
      extra: Layout.notifyMultiplier.littleEndianBytes))
    config.addCapability(id: VirtioPCICapability.id, body: capability(VirtioPCICapability.isr, offset: Layout.isr, length: 1))
    if device.configSize > 0 {
      config.addCapability(id: VirtioPCICapability.id, body: capability(VirtioPCICapability.device, offset: Layout.device, length: UInt32(device.configSize)))
    }
    let queues = (0..<device.queueCount).map { _ in VirtQueue(maxSize: device.maxQueueSize) }
    state = Mutex(State(config: config, queues: queues, notifyBase: Self.notifyBase(config)))
  }

  /// The virtio vendor, the modern device id of `type`, revision 1, class by type.
  public static func identity(_ type: VirtioDeviceType) -> PCIIdentity {
    let classCode: UInt32
    switch type {
    case .block, .ninePTransport: classCode = 0x01_80_00  // mass storage, other (QEMU's virtio-9p-pci too)
    case .console: classCode = 0x07_80_00  // communication, other
    case .network: classCode = 0x02_00_00  // network, Ethernet
    case .entropy: classCode = 0xFF_00_00  // unassigned, as QEMU's virtio-rng-pci
    }
    return PCIIdentity(
      vendorID: VirtioPCIID.vendor, deviceID: VirtioPCIID.modernDevice(type), revision: 1, classCode: classCode,
      subsystemVendorID: VirtioPCIID.vendor, subsystemID: type.rawValue)
  }

  // MARK: PCIFunction

  public func readConfig(offset: Int, size: Int) -> UInt32 {
    state.withLock { $0.config.read(offset: offset, size: size) }
  }

  public func writeConfig(offset: Int, size: Int, value: UInt32) {
    state.withLock { state in
      state.config.write(offset: offset, size: size, value: value)
      let base = Self.notifyBase(state.config)
      if base != state.notifyBase {
        state.notifyBase = base
        // Under the lock: two vCPUs moving the BAR at once are reported in the order they moved it.
        state.notifyObserver?(base)
      }
      updateLine(&state)
    }
  }

  private static func notifyBase(_ config: PCIConfigSpace) -> UInt64? {
    config.mappings.first { $0.bar == 0 }.map { $0.base + Layout.notify }
  }

  /// Called with the guest physical address of the notification region (queue `n`'s doorbell is
  /// at `base + n * Layout.notifyMultiplier`) each time the guest moves BAR0 or switches its
  /// decoding on, and with nil when it switches it off: a VMM that has the kernel catch the
  /// doorbells (KVM_IOEVENTFD) moves them along. Called at once with the current place. Called
  /// under the transport's lock: the observer must not call back into the transport.
  public func observeNotifyRegion(_ observer: @escaping @Sendable (UInt64?) -> Void) {
    state.withLock { state in
      state.notifyObserver = observer
      observer(state.notifyBase)
    }
  }

  /// The driver rang queue `queue`'s doorbell, by a path other than an MMIO write to the
  /// notification region (an eventfd the kernel signalled).
  public func doorbell(queue: Int) {
    notify(queue: queue)
  }

  public var barMappings: [PCIBARMapping] { state.withLock { $0.config.mappings } }

  public func readBAR(_ bar: Int, offset: UInt64, size: Int) -> UInt64 {
    guard bar == 0, [1, 2, 4, 8].contains(size) else { return 0 }
    switch offset {
    case Layout.common..<(Layout.common + UInt64(Layout.commonLength)):
      return state.withLock { readCommon(&$0, offset: offset - Layout.common, size: size) }
    case Layout.isr:
      let value = state.withLock { state -> UInt8 in
        let value = state.isr
        state.isr = 0
        updateLine(&state)
        return value
      }
      return UInt64(value)
    case Layout.device..<(Layout.device + UInt64(device.configSize)):
      let inner = Int(offset - Layout.device)
      guard inner + size <= device.configSize else { return 0 }
      return device.readConfig(offset: inner, size: size)
    default:
      return 0
    }
  }

  public func writeBAR(_ bar: Int, offset: UInt64, size: Int, value: UInt64) {
    guard bar == 0, [1, 2, 4, 8].contains(size) else { return }
    switch offset {
    case Layout.common..<(Layout.common + UInt64(Layout.commonLength)):
      writeCommon(offset: offset - Layout.common, size: size, value: value)
    case Layout.device..<(Layout.device + UInt64(device.configSize)):
      let inner = Int(offset - Layout.device)
      guard inner + size <= device.configSize else { return }
      device.writeConfig(offset: inner, size: size, value: value)
    case Layout.notify..<(Layout.notify + UInt64(device.queueCount) * UInt64(Layout.notifyMultiplier)):
      notify(queue: Int((offset - Layout.notify) / UInt64(Layout.notifyMultiplier)))
    default:
      break
    }
  }

  // MARK: common configuration

  /// The driver's view of the device status (for tests and the VMM's logs).
  public var status: UInt8 { state.withLock { $0.status } }
  /// The negotiated features (valid once FEATURES_OK).
  public var negotiatedFeatures: UInt64 { state.withLock { $0.driverFeatures } }

  private func readCommon(_ state: inout State, offset: UInt64, size: Int) -> UInt64 {
    let selected = Int(state.queueSelect)
    let queue = selected < state.queues.count ? state.queues[selected] : nil
    func field(_ value: UInt64, width: Int) -> UInt64? {
      width == size ? value : nil
    }
    let value: UInt64?
    switch offset {
    case VirtioPCICommonConfig.deviceFeatureSelect: value = field(UInt64(state.deviceFeatureSelect), width: 4)
    case VirtioPCICommonConfig.deviceFeature:
      let word: UInt64 = switch state.deviceFeatureSelect {
      case 0: offeredFeatures & 0xFFFF_FFFF
      case 1: offeredFeatures >> 32
      default: 0
      }
      value = field(word, width: 4)
    case VirtioPCICommonConfig.driverFeatureSelect: value = field(UInt64(state.driverFeatureSelect), width: 4)
    case VirtioPCICommonConfig.driverFeature:
      let word: UInt64 = switch state.driverFeatureSelect {
      case 0: state.driverFeatures & 0xFFFF_FFFF
      case 1: state.driverFeatures >> 32
      default: 0
      }
      value = field(word, width: 4)
    case VirtioPCICommonConfig.msixConfig: value = field(UInt64(Self.noVector), width: 2)
    case VirtioPCICommonConfig.numQueues: value = field(UInt64(state.queues.count), width: 2)
    case VirtioPCICommonConfig.deviceStatus:
      // After a reset, reads stay non-zero until requests from before it are finished in the host.
      let draining = state.status == 0 && state.resetPending && !device.isQuiescent
      if state.resetPending && !draining { state.resetPending = false }
      value = field(draining ? UInt64(VirtioStatus.acknowledge) : UInt64(state.status), width: 1)
    case VirtioPCICommonConfig.configGeneration: value = field(UInt64(state.configGeneration), width: 1)
    case VirtioPCICommonConfig.queueSelect: value = field(UInt64(state.queueSelect), width: 2)
    case VirtioPCICommonConfig.queueSize: value = field(UInt64(queue?.size ?? 0), width: 2)
    case VirtioPCICommonConfig.queueMSIXVector: value = field(UInt64(Self.noVector), width: 2)
    case VirtioPCICommonConfig.queueEnable: value = field(queue?.isReady == true ? 1 : 0, width: 2)
    case VirtioPCICommonConfig.queueNotifyOff: value = field(UInt64(selected < state.queues.count ? selected : 0), width: 2)
    case VirtioPCICommonConfig.queueDesc, VirtioPCICommonConfig.queueDesc + 4, VirtioPCICommonConfig.queueDriver, VirtioPCICommonConfig.queueDriver + 4,
      VirtioPCICommonConfig.queueDevice, VirtioPCICommonConfig.queueDevice + 4:
      let base = offset & ~7
      let address: UInt64 = switch base {
      case VirtioPCICommonConfig.queueDesc: queue?.descriptorTable ?? 0
      case VirtioPCICommonConfig.queueDriver: queue?.availableRing ?? 0
      default: queue?.usedRing ?? 0
      }
      if size == 8 && offset == base {
        value = address
      } else if size == 4 {
        value = offset == base ? address & 0xFFFF_FFFF : address >> 32
      } else {
        value = nil
      }
    default: value = nil
    }
    return value ?? 0
  }

  private func writeCommon(offset: UInt64, size: Int, value: UInt64) {
    var action: (() -> Void)?
    state.withLock { state in
      let selected = Int(state.queueSelect)
      let configurable = state.status & VirtioStatus.driverOK == 0 && selected < state.queues.count
      switch (offset, size) {
      case (VirtioPCICommonConfig.deviceFeatureSelect, 4): state.deviceFeatureSelect = UInt32(truncatingIfNeeded: value)
      case (VirtioPCICommonConfig.driverFeatureSelect, 4): state.driverFeatureSelect = UInt32(truncatingIfNeeded: value)
      case (VirtioPCICommonConfig.driverFeature, 4):
        guard state.status & VirtioStatus.featuresOK == 0 else { break }
        let word = value & 0xFFFF_FFFF
        switch state.driverFeatureSelect {
        case 0: state.driverFeatures = state.driverFeatures & 0xFFFF_FFFF_0000_0000 | word
        case 1: state.driverFeatures = state.driverFeatures & 0xFFFF_FFFF | word << 32
        default: break
        }
      case (VirtioPCICommonConfig.deviceStatus, 1):
        action = setStatus(&state, UInt8(truncatingIfNeeded: value))
      case (VirtioPCICommonConfig.queueSelect, 2): state.queueSelect = UInt16(truncatingIfNeeded: value)
      case (VirtioPCICommonConfig.queueSize, 2):
        if configurable { state.queues[selected].size = UInt16(truncatingIfNeeded: value) }
      case (VirtioPCICommonConfig.queueEnable, 2):
        if configurable && value & 1 == 1 { state.queues[selected].isReady = true }
      case (VirtioPCICommonConfig.queueDesc, _), (VirtioPCICommonConfig.queueDesc + 4, 4), (VirtioPCICommonConfig.queueDriver, _), (VirtioPCICommonConfig.queueDriver + 4, 4),
        (VirtioPCICommonConfig.queueDevice, _), (VirtioPCICommonConfig.queueDevice + 4, 4):
        guard configurable, size == 4 || size == 8 else { break }
        let base = offset & ~7
        func merge(_ old: UInt64) -> UInt64 {
          if size == 8 { return value }
          return offset == base ? old & 0xFFFF_FFFF_0000_0000 | value & 0xFFFF_FFFF : old & 0xFFFF_FFFF | value << 32
        }
        switch base {
        case VirtioPCICommonConfig.queueDesc: state.queues[selected].descriptorTable = merge(state.queues[selected].descriptorTable)
        case VirtioPCICommonConfig.queueDriver: state.queues[selected].availableRing = merge(state.queues[selected].availableRing)
        default: state.queues[selected].usedRing = merge(state.queues[selected].usedRing)
        }
      default:
        break  // read-only fields, MSI-X vectors (no MSI-X), odd sizes
      }
      updateLine(&state)
    }
    action?()
  }

  /// Applies a status write; returns what must run after the lock is dropped (device calls).
  private func setStatus(_ state: inout State, _ value: UInt8) -> (() -> Void)? {
    if value == 0 {
      let wasActive = state.active
      state.status = 0
      state.driverFeatures = 0
      state.deviceFeatureSelect = 0
      state.driverFeatureSelect = 0
      state.queueSelect = 0
      state.isr = 0
      state.generation &+= 1
      state.active = false
      state.resetPending = wasActive
      let maxSize = device.maxQueueSize
      state.queues = state.queues.map { _ in VirtQueue(maxSize: maxSize) }
      let device = self.device
      return wasActive ? { device.reset() } : nil
    }
    var status = value | state.status & VirtioStatus.needsReset
    let newBits = value & ~state.status
    if newBits & VirtioStatus.featuresOK != 0 && !featuresAcceptable(state.driverFeatures) {
      status &= ~VirtioStatus.featuresOK
    }
    state.status = status
    guard newBits & VirtioStatus.driverOK != 0, status & VirtioStatus.featuresOK != 0, !state.active else {
      return nil
    }
    // DRIVER_OK: hand the validated queues to the device.
    let features = state.driverFeatures
    var queues = state.queues
    var broken = false
    for index in queues.indices {
      queues[index].eventIndex = features & VirtioFeature.ringEventIndex != 0
      queues[index].indirect = features & VirtioFeature.ringIndirectDescriptors != 0
      queues[index].addressMask = addressMask
      if queues[index].isReady && !queues[index].isValid(memory: memory) {
        queues[index].isReady = false
        broken = true
      }
    }
    state.queues = queues
    if broken {
      state.status |= VirtioStatus.needsReset
      state.isr |= VirtioISR.configuration
      return nil
    }
    state.active = true
    let activation = VirtioActivation(
      memory: memory, features: features, queues: queues, interrupt: makeInterrupt(generation: state.generation))
    let device = self.device
    return { device.activate(activation) }
  }

  /// Whether the driver's feature set is one this device accepts.
  public func featuresAcceptable(_ features: UInt64) -> Bool {
    guard features & ~offeredFeatures == 0, features & VirtioFeature.version1 != 0 else { return false }
    if requireAccessPlatform && features & VirtioFeature.accessPlatform == 0 { return false }
    return true
  }

  private func makeInterrupt(generation: UInt64) -> VirtioInterrupt {
    VirtioInterrupt { [weak self] isr, needsReset in
      self?.raise(isr: isr, needsReset: needsReset, generation: generation)
    }
  }

  private func raise(isr: UInt8, needsReset: Bool, generation: UInt64) {
    state.withLock { state in
      guard state.generation == generation, state.active else { return }
      if needsReset {
        state.status |= VirtioStatus.needsReset
        state.configGeneration &+= 1
      }
      state.isr |= isr
      updateLine(&state)
    }
  }

  private func notify(queue: Int) {
    let active = state.withLock { $0.active && queue < $0.queues.count && $0.queues[queue].isReady }
    if active { device.process(queue: queue) }
  }

  /// The new INTx level if it changed: ISR non-zero and INTx not disabled.
  /// Drives INTx to what the ISR and the command register's interrupt-disable bit say, under the
  /// state lock: a level decided under it and driven after it could reach the line in the other
  /// order than decided (a completion raising it on the I/O thread while a vCPU's ISR read lowers
  /// it), leaving the line high with the ISR clear, an interrupt no read ever ends, which Linux
  /// then disables for good (seen as virtio-net going silent under traffic both ways).
  private func updateLine(_ state: inout State) {
    let level = state.isr != 0 && !state.config.interruptDisabled
    guard level != state.level else { return }
    state.level = level
    interruptLine?.set(level: level)
  }
}
