import FirmwareCore

/// The identity registers of a type-0 PCI function.
public struct PCIIdentity: Sendable, Equatable {
  public var vendorID: UInt16
  public var deviceID: UInt16
  public var revision: UInt8
  /// Base class, subclass and programming interface, as one 24-bit value (e.g. 0x01_80_00).
  public var classCode: UInt32
  public var subsystemVendorID: UInt16
  public var subsystemID: UInt16

  public init(
    vendorID: UInt16, deviceID: UInt16, revision: UInt8, classCode: UInt32, subsystemVendorID: UInt16,
    subsystemID: UInt16
  ) {
    self.vendorID = vendorID
    self.deviceID = deviceID
    self.revision = revision
    self.classCode = classCode
    self.subsystemVendorID = subsystemVendorID
    self.subsystemID = subsystemID
  }
}

/// Where a memory BAR currently decodes: guest physical `[base, base + size)`.
public struct PCIBARMapping: Sendable, Equatable {
  public var bar: Int
  public var base: UInt64
  public var size: UInt64

  public init(bar: Int, base: UInt64, size: UInt64) {
    self.bar = bar
    self.base = base
    self.size = size
  }
}

/// A type-0 configuration space (4 KiB, as ECAM gives each function): identity, command register,
/// 64-bit memory BARs with size probing, a capability list, and the INTx pin and line.
///
/// A plain value: the device that owns it keeps it behind its lock. Everything the guest writes is
/// masked to the bits a real function implements, so no write can corrupt the identity or the
/// capability list.
public struct PCIConfigSpace: Sendable {
  public enum Offset {
    public static let vendorID = 0x00
    public static let command = 0x04
    public static let status = 0x06
    public static let revision = 0x08
    public static let headerType = 0x0E
    public static let bar0 = 0x10
    public static let subsystemVendorID = 0x2C
    public static let capabilities = 0x34
    public static let interruptLine = 0x3C
    public static let interruptPin = 0x3D
  }

  public enum Command {
    public static let memorySpace: UInt16 = 1 << 1
    public static let busMaster: UInt16 = 1 << 2
    public static let interruptDisable: UInt16 = 1 << 10
    /// The command bits this function implements (I/O space reads as 0: no I/O BARs).
    static let writable: UInt16 = memorySpace | busMaster | interruptDisable
  }

  public static let size = 4096
  /// Where the first capability goes.
  public static let firstCapability = 0x40

  private struct BAR: Sendable {
    var size: UInt64
    /// Current address (low bits below `size` always zero).
    var address: UInt64
  }

  private var bytes: [UInt8]
  /// Memory BARs by their (low) index; a 64-bit BAR also takes index + 1.
  private var bars: [Int: BAR] = [:]
  private var lastCapability: Int?
  private var nextCapability = firstCapability

  /// A function with `identity`, INTx pin `interruptPin` (1 = INTA, 0 = none).
  public init(identity: PCIIdentity, interruptPin: UInt8 = 1) {
    bytes = [UInt8](repeating: 0, count: Self.size)
    put16(Offset.vendorID, identity.vendorID)
    put16(Offset.vendorID + 2, identity.deviceID)
    bytes[Offset.revision] = identity.revision
    put32(Offset.revision, UInt32(identity.revision) | identity.classCode << 8)
    bytes[Offset.headerType] = 0
    put16(Offset.subsystemVendorID, identity.subsystemVendorID)
    put16(Offset.subsystemVendorID + 2, identity.subsystemID)
    bytes[Offset.interruptPin] = interruptPin
  }

  /// Declares BAR `index` (0, 2 or 4) as a 64-bit non-prefetchable memory BAR of `size` bytes (a
  /// power of two, at least 16), placed at `address` (aligned to `size`).
  public mutating func addMemoryBAR64(index: Int, size: UInt64, address: UInt64) {
    precondition(index >= 0 && index <= 4 && index % 2 == 0, "64-bit BARs take an even index below 5")
    precondition(size >= 16 && size & (size - 1) == 0, "BAR sizes are powers of two")
    bars[index] = BAR(size: size, address: address & ~(size - 1))
  }

  /// Appends a capability with id `id` and `body` (the bytes after id and next pointer); returns its
  /// offset.
  @discardableResult
  public mutating func addCapability(id: UInt8, body: [UInt8]) -> Int {
    let offset = nextCapability
    precondition(offset + 2 + body.count <= 256, "capabilities must fit the first 256 bytes")
    bytes[offset] = id
    bytes[offset + 1] = 0
    for (index, byte) in body.enumerated() { bytes[offset + 2 + index] = byte }
    if let last = lastCapability {
      bytes[last + 1] = UInt8(offset)
    } else {
      bytes[Offset.capabilities] = UInt8(offset)
      put16(Offset.status, get16(Offset.status) | 0x10)  // capability list present
    }
    lastCapability = offset
    nextCapability = (offset + 2 + body.count + 3) & ~3
    return offset
  }

  // MARK: guest access

  /// Reads `size` bytes (1, 2 or 4, naturally aligned) at `offset`.
  public func read(offset: Int, size: Int) -> UInt32 {
    guard [1, 2, 4].contains(size), offset >= 0, offset % size == 0, offset + size <= Self.size else {
      return UInt32.max
    }
    let dword = readDword(offset & ~3)
    let shift = UInt32((offset & 3) * 8)
    let mask: UInt32 = size == 4 ? .max : (1 << (UInt32(size) * 8)) - 1
    return (dword >> shift) & mask
  }

  /// Writes the low `size` bytes of `value` at `offset`; read-only bits are kept.
  public mutating func write(offset: Int, size: Int, value: UInt32) {
    guard [1, 2, 4].contains(size), offset >= 0, offset % size == 0, offset + size <= Self.size else { return }
    let aligned = offset & ~3
    let shift = UInt32((offset & 3) * 8)
    let mask: UInt32 = (size == 4 ? .max : (1 << (UInt32(size) * 8)) - 1) << shift
    let merged = readDword(aligned) & ~mask | (value << shift) & mask
    writeDword(aligned, merged, changed: mask)
  }

  private func readDword(_ offset: Int) -> UInt32 {
    if offset >= Offset.bar0 && offset < Offset.bar0 + 24 {
      let index = (offset - Offset.bar0) / 4
      if let bar = bars[index] {
        return UInt32(truncatingIfNeeded: bar.address) | 0x4  // 64-bit memory BAR, not prefetchable
      }
      if index > 0, let bar = bars[index - 1] {
        return UInt32(truncatingIfNeeded: bar.address >> 32)
      }
      return 0
    }
    return get32(offset)
  }

  private mutating func writeDword(_ offset: Int, _ value: UInt32, changed: UInt32) {
    switch offset {
    case Offset.command:
      if changed & 0xFFFF != 0 {
        let command = UInt16(truncatingIfNeeded: value) & Command.writable
        put16(Offset.command, command)
      }
    // Status bits are read-only or write-one-to-clear with nothing to clear.
    case Offset.bar0..<(Offset.bar0 + 24):
      let index = (offset - Offset.bar0) / 4
      if var bar = bars[index] {
        let low = UInt64(value & 0xFFFF_FFF0)
        bar.address = (bar.address & 0xFFFF_FFFF_0000_0000 | low) & ~(bar.size - 1)
        bars[index] = bar
      } else if index > 0, var bar = bars[index - 1] {
        bar.address = (UInt64(value) << 32 | bar.address & 0xFFFF_FFFF) & ~(bar.size - 1)
        bars[index - 1] = bar
      }
    case Offset.interruptLine:
      if changed & 0xFF != 0 { bytes[Offset.interruptLine] = UInt8(truncatingIfNeeded: value) }
    default:
      break  // identity, capabilities and everything else: read-only
    }
  }

  // MARK: state the device acts on

  public var command: UInt16 { get16(Offset.command) }
  public var memoryEnabled: Bool { command & Command.memorySpace != 0 }
  public var interruptDisabled: Bool { command & Command.interruptDisable != 0 }

  /// The memory BARs that decode now: memory space enabled and the BAR placed (not at 0 and not
  /// mid-probe with all ones in its address).
  public var mappings: [PCIBARMapping] {
    guard memoryEnabled else { return [] }
    return bars.keys.sorted().compactMap { index in
      guard let bar = bars[index], bar.address != 0, bar.address <= UInt64.max - bar.size else { return nil }
      return PCIBARMapping(bar: index, base: bar.address, size: bar.size)
    }
  }

  /// The current address of BAR `index`, enabled or not.
  public func barAddress(_ index: Int) -> UInt64? { bars[index]?.address }

  // MARK: bytes

  // Offsets are in range by construction (register constants) or checked by the callers.
  private func get16(_ offset: Int) -> UInt16 { bytes.le16(at: offset)! }
  private func get32(_ offset: Int) -> UInt32 { bytes.le32(at: offset)! }
  private mutating func put16(_ offset: Int, _ value: UInt16) { bytes.storeLE(UInt64(value), at: offset, width: 2) }
  private mutating func put32(_ offset: Int, _ value: UInt32) { bytes.storeLE(UInt64(value), at: offset, width: 4) }
}
