import Synchronization

/// A function on the PCI bus, as the host bridge sees it: a 4 KiB configuration space.
public protocol PCIFunction: AnyObject, Sendable {
  /// Reads `size` bytes (1, 2 or 4) of configuration space at `offset`.
  func readConfig(offset: Int, size: Int) -> UInt32
  /// Writes `size` bytes of configuration space at `offset`.
  func writeConfig(offset: Int, size: Int, value: UInt32)
  /// The memory BARs that decode now (memory space enabled, BAR placed).
  var barMappings: [PCIBARMapping] { get }
  /// A guest read of `size` bytes at `offset` inside BAR `bar`.
  func readBAR(_ bar: Int, offset: UInt64, size: Int) -> UInt64
  /// A guest write of `size` bytes at `offset` inside BAR `bar`.
  func writeBAR(_ bar: Int, offset: UInt64, size: Int, value: UInt64)
}

extension PCIFunction {
  public var barMappings: [PCIBARMapping] { [] }
  public func readBAR(_ bar: Int, offset: UInt64, size: Int) -> UInt64 { 0 }
  public func writeBAR(_ bar: Int, offset: UInt64, size: Int, value: UInt64) {}
}

/// The PCI host bridge's configuration window (ECAM, "pci-host-ecam-generic"): one bus, 32 slots,
/// function 0 of each. A slot with no device reads as all ones, which is how a driver sees that
/// nothing is there.
public final class PCIHostBridge: MMIODevice {
  /// ECAM size of one bus: 32 devices x 8 functions x 4 KiB.
  public static let configSize: UInt64 = 32 * 8 * 4096
  public static let slotCount = 32

  private let slots: [(any PCIFunction)?]
  /// The functions present, in slot order.
  public let functions: [any PCIFunction]

  /// A bridge with `functions[slot]` at each slot (none for the missing ones).
  public init(functions: [Int: any PCIFunction] = [:]) {
    slots = (0..<Self.slotCount).map { functions[$0] }
    self.functions = slots.compactMap { $0 }
  }

  /// The MMIO window device that routes accesses in `[base, base + size)` to whichever BAR of which
  /// function decodes them *now* (so a guest that moves BARs is followed). Register it on the bus
  /// over the PCI memory window.
  public func memoryWindow(base: UInt64) -> PCIMemoryWindow {
    PCIMemoryWindow(base: base, functions: functions)
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

/// The PCI memory window on the MMIO bus: each access is routed to the function and BAR whose
/// current mapping holds it; an access no BAR decodes reads as all ones and writes are dropped
/// (as a master abort on real hardware).
public final class PCIMemoryWindow: MMIODevice {
  public let base: UInt64
  private let functions: [any PCIFunction]

  init(base: UInt64, functions: [any PCIFunction]) {
    self.base = base
    self.functions = functions
  }

  private func route(_ offset: UInt64, size: Int) -> (any PCIFunction, Int, UInt64)? {
    guard offset <= UInt64.max - base else { return nil }
    let address = base + offset
    for function in functions {
      for mapping in function.barMappings
      where address >= mapping.base && address - mapping.base < mapping.size {
        let inner = address - mapping.base
        guard UInt64(size) <= mapping.size - inner else { return nil }
        return (function, mapping.bar, inner)
      }
    }
    return nil
  }

  public func read(offset: UInt64, size: Int) -> UInt64 {
    guard let (function, bar, inner) = route(offset, size: size) else {
      return size >= 8 ? UInt64.max : (1 << (UInt64(size) * 8)) - 1
    }
    return function.readBAR(bar, offset: inner, size: size)
  }

  public func write(offset: UInt64, size: Int, value: UInt64) {
    guard let (function, bar, inner) = route(offset, size: size) else { return }
    function.writeBAR(bar, offset: inner, size: size, value: value)
  }
}
