import Platform

/// Why an access to guest memory was refused.
public enum GuestMemoryError: Error, Equatable, CustomStringConvertible {
  /// `[address, address + length)` is not inside one region of guest RAM.
  case outOfRange(address: UInt64, length: UInt64)
  /// Mapping the memory failed with `errno`.
  case mapFailed(size: UInt64, errno: Errno)
  /// Regions must be page aligned, non-empty and must not overlap.
  case invalidLayout(String)

  public var description: String {
    switch self {
    case .outOfRange(let address, let length):
      return "guest address range 0x\(String(address, radix: 16))+0x\(String(length, radix: 16)) is outside guest RAM"
    case .mapFailed(let size, let errno):
      return "cannot map \(size >> 20) MiB of guest RAM: \(errno)"
    case .invalidLayout(let why):
      return "invalid guest memory layout: \(why)"
    }
  }
}

/// One contiguous range of guest RAM and the host memory that backs it.
public struct GuestRegion: @unchecked Sendable {
  /// Guest physical address of the first byte.
  public let base: UInt64
  /// Length in bytes.
  public let size: UInt64
  /// Host address of the first byte.
  public let host: UnsafeMutableRawPointer

  /// One past the last guest address.
  public var end: UInt64 { base + size }

  func contains(_ address: UInt64, length: UInt64) -> Bool {
    address >= base && length <= size && address - base <= size - length
  }
}

/// Guest RAM: a sorted set of regions, with every access bounds-checked by guest address.
///
/// The guest is untrusted: every address and length that comes from it (virtqueue descriptors,
/// MMIO, boot images) goes through ``slice(at:count:)`` or one of the typed accessors, which refuse
/// any range that is not wholly inside one region.
public final class GuestMemory: @unchecked Sendable {
  /// The regions, sorted by base address.
  public let regions: [GuestRegion]
  private let ownsMappings: Bool

  /// Maps anonymous host memory for each `(base, size)` range.
  public init(ranges: [(base: UInt64, size: UInt64)]) throws(GuestMemoryError) {
    var mapped: [GuestRegion] = []
    for range in ranges.sorted(by: { $0.base < $1.base }) {
      guard range.size > 0, range.base % 4096 == 0, range.size % 4096 == 0 else {
        Self.unmap(mapped)
        throw .invalidLayout("region 0x\(String(range.base, radix: 16)) is empty or not page aligned")
      }
      if let last = mapped.last, last.end > range.base {
        Self.unmap(mapped)
        throw .invalidLayout("regions overlap at 0x\(String(range.base, radix: 16))")
      }
      guard let host = mmap(nil, Int(range.size), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
            host != MAP_FAILED
      else {
        let error = Errno.current
        Self.unmap(mapped)
        throw .mapFailed(size: range.size, errno: error)
      }
      mapped.append(GuestRegion(base: range.base, size: range.size, host: host))
    }
    regions = mapped
    ownsMappings = true
  }

  /// Wraps host memory the caller mapped (and keeps mapped for this object's lifetime).
  public init(borrowing regions: [GuestRegion]) {
    self.regions = regions.sorted { $0.base < $1.base }
    ownsMappings = false
  }

  deinit {
    if ownsMappings { Self.unmap(regions) }
  }

  private static func unmap(_ regions: [GuestRegion]) {
    for region in regions { munmap(region.host, Int(region.size)) }
  }

  /// Total bytes of RAM.
  public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

  /// The region holding `[address, address + count)`, if one holds all of it.
  public func region(containing address: UInt64, count: UInt64 = 1) -> GuestRegion? {
    regions.first { $0.contains(address, length: count) }
  }

  /// The host bytes behind `[address, address + count)`.
  public func slice(at address: UInt64, count: Int) throws(GuestMemoryError) -> UnsafeMutableRawBufferPointer {
    let length = UInt64(max(count, 0))
    guard count >= 0, let region = region(containing: address, count: length) else {
      throw .outOfRange(address: address, length: length)
    }
    return UnsafeMutableRawBufferPointer(start: region.host + Int(address - region.base), count: count)
  }

  /// Copies `bytes` into guest memory at `address`.
  public func write(_ bytes: UnsafeRawBufferPointer, at address: UInt64) throws(GuestMemoryError) {
    let target = try slice(at: address, count: bytes.count)
    if let source = bytes.baseAddress, bytes.count > 0 {
      target.baseAddress!.copyMemory(from: source, byteCount: bytes.count)
    }
  }

  /// Copies `bytes` into guest memory at `address`.
  public func write(_ bytes: [UInt8], at address: UInt64) throws(GuestMemoryError) {
    let target = try slice(at: address, count: bytes.count)
    target.copyBytes(from: bytes)
  }

  /// Copies `count` bytes of guest memory at `address`.
  public func read(at address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
    let source = try slice(at: address, count: count)
    return Array(source)
  }

  /// Fills `buffer` from guest memory at `address`.
  public func read(at address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
    let source = try slice(at: address, count: buffer.count)
    if let target = buffer.baseAddress, buffer.count > 0 {
      target.copyMemory(from: source.baseAddress!, byteCount: buffer.count)
    }
  }

  /// Reads a little-endian integer at `address` (any alignment).
  public func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) throws(GuestMemoryError) -> T {
    let source = try slice(at: address, count: MemoryLayout<T>.size)
    return T(littleEndian: source.loadUnaligned(as: T.self))
  }

  /// Writes a little-endian integer at `address` (any alignment).
  public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(GuestMemoryError) {
    let target = try slice(at: address, count: MemoryLayout<T>.size)
    target.storeBytes(of: value.littleEndian, as: T.self)
  }

  /// Fills `[address, address + count)` with zeros.
  public func zero(at address: UInt64, count: Int) throws(GuestMemoryError) {
    let target = try slice(at: address, count: count)
    if count > 0 { memset(target.baseAddress!, 0, count) }
  }
}
