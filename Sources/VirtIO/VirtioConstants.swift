/// Virtio device types (virtio 1.x, 5).
public enum VirtioDeviceType: UInt16, Sendable {
  case block = 2
  case console = 3
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
