/// Names and numbers of the virtio 1.x specification: one table for the host's device models, its
/// driver-side test harness and the firmware's virtio-blk driver.

/// Virtio device types (virtio 1.x, 5).
public enum VirtioDeviceType: UInt16, Sendable {
  case network = 1
  case block = 2
  case console = 3
  case entropy = 4
  /// The 9P transport (a shared host directory).
  case ninePTransport = 9
}

/// Feature bits shared by every device type (virtio 1.x, 6).
public enum VirtioFeature {
  public static let ringIndirectDescriptors: UInt64 = 1 << 28
  public static let ringEventIndex: UInt64 = 1 << 29
  public static let version1: UInt64 = 1 << 32
  public static let accessPlatform: UInt64 = 1 << 33
}

/// `device_status` bits (virtio 1.x, 2.1).
public enum VirtioStatus {
  public static let acknowledge: UInt8 = 1
  public static let driver: UInt8 = 2
  public static let driverOK: UInt8 = 4
  public static let featuresOK: UInt8 = 8
  public static let needsReset: UInt8 = 0x40
  public static let failed: UInt8 = 0x80
}

/// ISR status bits (virtio 1.x, 4.1.4.5).
public enum VirtioISR {
  public static let queue: UInt8 = 1
  public static let configuration: UInt8 = 2
}

/// Split virtqueue descriptor flags.
public enum VirtqDescriptorFlag {
  public static let next: UInt16 = 1
  public static let write: UInt16 = 2
  public static let indirect: UInt16 = 4
}

/// PCI ids of virtio devices (virtio 1.x, 4.1.2).
public enum VirtioPCIID {
  public static let vendor: UInt16 = 0x1AF4
  /// The modern (virtio 1.0) device id of `type`.
  public static func modernDevice(_ type: VirtioDeviceType) -> UInt16 { 0x1040 + type.rawValue }
  /// The transitional virtio-blk device id (legacy and modern interfaces).
  public static let transitionalBlock: UInt16 = 0x1001
}

/// The virtio-pci transport's vendor capabilities (virtio 1.x, 4.1.4).
public enum VirtioPCICapability {
  /// The PCI capability id of every virtio capability (vendor-specific).
  public static let id: UInt8 = 0x09
  /// `cfg_type` values.
  public static let common: UInt8 = 1
  public static let notify: UInt8 = 2
  public static let isr: UInt8 = 3
  public static let device: UInt8 = 4
  /// Offsets inside a capability: `cfg_type`, `bar`, `offset`, `length`, and the notify
  /// capability's `notify_off_multiplier`.
  public static let typeOffset: UInt64 = 3, barOffset: UInt64 = 4, regionOffset: UInt64 = 8, lengthOffset: UInt64 = 12,
    multiplierOffset: UInt64 = 16
}

/// Offsets of the common configuration registers (`struct virtio_pci_common_cfg`, 4.1.4.3).
public enum VirtioPCICommonConfig {
  public static let deviceFeatureSelect: UInt64 = 0x00
  public static let deviceFeature: UInt64 = 0x04
  public static let driverFeatureSelect: UInt64 = 0x08
  public static let driverFeature: UInt64 = 0x0C
  public static let msixConfig: UInt64 = 0x10
  public static let numQueues: UInt64 = 0x12
  public static let deviceStatus: UInt64 = 0x14
  public static let configGeneration: UInt64 = 0x15
  public static let queueSelect: UInt64 = 0x16
  public static let queueSize: UInt64 = 0x18
  public static let queueMSIXVector: UInt64 = 0x1A
  public static let queueEnable: UInt64 = 0x1C
  public static let queueNotifyOff: UInt64 = 0x1E
  public static let queueDesc: UInt64 = 0x20
  public static let queueDriver: UInt64 = 0x28
  public static let queueDevice: UInt64 = 0x30
  /// Bytes of the structure.
  public static let size: UInt32 = 0x38
}

/// virtio-blk request types and status values (virtio 1.x, 5.2.6).
public enum BlockRequestType: UInt32, Sendable {
  case read = 0
  case write = 1
  case flush = 4
  case getID = 8
  case discard = 11
  case writeZeroes = 13
}

/// The status byte of a virtio-blk request.
public enum BlockStatus {
  public static let ok: UInt8 = 0
  public static let ioError: UInt8 = 1
  public static let unsupported: UInt8 = 2
}
