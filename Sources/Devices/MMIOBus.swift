/// A device reached through memory-mapped I/O. Accesses are at most 8 bytes, as on arm64.
///
/// Devices are called from every vCPU thread (and the I/O thread), so each keeps its own state
/// behind its own lock.
public protocol MMIODevice: AnyObject, Sendable {
  /// A guest read of `size` bytes at `offset` from the device's base; the result is little-endian.
  func read(offset: UInt64, size: Int) -> UInt64
  /// A guest write of the low `size` bytes of `value` at `offset` from the device's base.
  func write(offset: UInt64, size: Int, value: UInt64)
}

/// Why a device could not be placed on the bus.
public enum BusError: Error, Equatable, CustomStringConvertible {
  case overlap(base: UInt64, size: UInt64)
  case empty(base: UInt64)

  public var description: String {
    switch self {
    case .overlap(let base, let size):
      return "MMIO range 0x\(String(base, radix: 16))+0x\(String(size, radix: 16)) overlaps another device"
    case .empty(let base):
      return "MMIO range at 0x\(String(base, radix: 16)) is empty"
    }
  }
}

/// The MMIO address space: a sorted map of non-overlapping ranges to devices (rust-vmm's
/// `vm-device` bus). Built once while the machine is assembled, then only read.
public struct MMIOBus: Sendable {
  struct Entry: Sendable {
    let base: UInt64
    let size: UInt64
    let device: any MMIODevice
  }

  private var entries: [Entry] = []

  public init() {}

  /// Places `device` at `[base, base + size)`.
  public mutating func register(_ device: any MMIODevice, at base: UInt64, size: UInt64) throws(BusError) {
    guard size > 0, base <= UInt64.max - size else { throw .empty(base: base) }
    let index = entries.firstIndex { $0.base >= base } ?? entries.endIndex
    if index > entries.startIndex, entries[index - 1].base + entries[index - 1].size > base {
      throw .overlap(base: base, size: size)
    }
    if index < entries.endIndex, entries[index].base < base + size {
      throw .overlap(base: base, size: size)
    }
    entries.insert(Entry(base: base, size: size, device: device), at: index)
  }

  /// The device that owns `address`, and the offset of `address` from the device's base.
  public func resolve(_ address: UInt64) -> (device: any MMIODevice, offset: UInt64)? {
    var low = 0
    var high = entries.count
    while low < high {  // first entry whose base is above address
      let middle = (low + high) / 2
      if entries[middle].base <= address { low = middle + 1 } else { high = middle }
    }
    guard low > 0 else { return nil }
    let entry = entries[low - 1]
    let offset = address - entry.base
    return offset < entry.size ? (entry.device, offset) : nil
  }

  /// Reads through the bus; `nil` when no device owns the address.
  public func read(_ address: UInt64, size: Int) -> UInt64? {
    guard let (device, offset) = resolve(address) else { return nil }
    return device.read(offset: offset, size: size)
  }

  /// Writes through the bus; `false` when no device owns the address.
  @discardableResult
  public func write(_ address: UInt64, size: Int, value: UInt64) -> Bool {
    guard let (device, offset) = resolve(address) else { return false }
    device.write(offset: offset, size: size, value: value)
    return true
  }
}
