import Synchronization

/// A function on the PCI bus, as the host bridge sees it: a 4 KiB configuration space.
public protocol PCIFunction: AnyObject, Sendable {
  /// Reads `size` bytes (1, 2 or 4) of configuration space at `offset`.
  func readConfig(offset: Int, size: Int) -> UInt32
  /// Writes `size` bytes of configuration space at `offset`.
  func writeConfig(offset: Int, size: Int, value: UInt32)
}

/// The PCI host bridge's configuration window (ECAM, "pci-host-ecam-generic"): one bus, 32 slots,
/// function 0 of each. A slot with no device reads as all ones, which is how a driver sees that
/// nothing is there.
public final class PCIHostBridge: MMIODevice {
  /// ECAM size of one bus: 32 devices x 8 functions x 4 KiB.
  public static let configSize: UInt64 = 32 * 8 * 4096
  public static let slotCount = 32

  private let slots: [(any PCIFunction)?]

  /// A bridge with `functions[slot]` at each slot (none for the missing ones).
  public init(functions: [Int: any PCIFunction] = [:]) {
    slots = (0..<Self.slotCount).map { functions[$0] }
  }

  private func function(at offset: UInt64) -> (any PCIFunction, Int)? {
    let slot = Int(offset >> 15)
    let function = Int(offset >> 12) & 7
    guard slot < Self.slotCount, function == 0, let device = slots[slot] else { return nil }
    return (device, Int(offset & 0xFFF))
  }

  public func read(offset: UInt64, size: Int) -> UInt64 {
    guard [1, 2, 4].contains(size), offset % UInt64(size) == 0, let (device, register) = function(at: offset) else {
      return size >= 8 ? UInt64.max : (1 << (UInt64(size) * 8)) - 1
    }
    return UInt64(device.readConfig(offset: register, size: size))
  }

  public func write(offset: UInt64, size: Int, value: UInt64) {
    guard [1, 2, 4].contains(size), offset % UInt64(size) == 0, let (device, register) = function(at: offset) else {
      return
    }
    device.writeConfig(offset: register, size: size, value: UInt32(truncatingIfNeeded: value))
  }
}
