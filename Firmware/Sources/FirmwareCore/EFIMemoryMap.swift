/// A UEFI memory type (UEFI 2.10 §7.2, EFI_MEMORY_TYPE).
public struct EFIMemoryType: RawRepresentable, Equatable, Hashable, Sendable, CustomStringConvertible {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  public static let reserved = EFIMemoryType(rawValue: 0)
  public static let loaderCode = EFIMemoryType(rawValue: 1)
  public static let loaderData = EFIMemoryType(rawValue: 2)
  public static let bootServicesCode = EFIMemoryType(rawValue: 3)
  public static let bootServicesData = EFIMemoryType(rawValue: 4)
  public static let runtimeServicesCode = EFIMemoryType(rawValue: 5)
  public static let runtimeServicesData = EFIMemoryType(rawValue: 6)
  public static let conventional = EFIMemoryType(rawValue: 7)
  public static let unusable = EFIMemoryType(rawValue: 8)
  public static let acpiReclaim = EFIMemoryType(rawValue: 9)
  public static let acpiNVS = EFIMemoryType(rawValue: 10)
  public static let mmio = EFIMemoryType(rawValue: 11)
  public static let mmioPortSpace = EFIMemoryType(rawValue: 12)
  public static let palCode = EFIMemoryType(rawValue: 13)
  public static let persistent = EFIMemoryType(rawValue: 14)
  public static let unaccepted = EFIMemoryType(rawValue: 15)
  /// One past the last type the specification defines.
  static let maxDefined: UInt32 = 16

  /// Whether AllocatePages and AllocatePool accept this type: the defined types except the free
  /// ones (conventional, persistent, unaccepted), plus the OEM (0x7000_0000…) and OS-loader
  /// (0x8000_0000…) ranges, as the specification and edk2 allow.
  public var isAllocatable: Bool {
    if rawValue >= 0x7000_0000 { return true }
    return rawValue < EFIMemoryType.maxDefined && self != .conventional && self != .persistent && self != .unaccepted
  }

  /// Runtime types keep their contents and mapping after ExitBootServices (EFI_MEMORY_RUNTIME).
  public var isRuntime: Bool { self == .runtimeServicesCode || self == .runtimeServicesData }

  public var description: String {
    let names = ["Reserved", "LoaderCode", "LoaderData", "BootServicesCode", "BootServicesData",
                 "RuntimeServicesCode", "RuntimeServicesData", "Conventional", "Unusable", "ACPIReclaim",
                 "ACPINVS", "MMIO", "MMIOPortSpace", "PalCode", "Persistent", "Unaccepted"]
    return rawValue < EFIMemoryType.maxDefined ? names[Int(rawValue)] : "type 0x\(String(rawValue, radix: 16))"
  }
}

/// Memory attributes of a descriptor (UEFI 2.10 §7.2, EFI_MEMORY_*).
public struct EFIMemoryAttribute: OptionSet, Equatable, Hashable, Sendable {
  public let rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }
  public static let uncacheable = EFIMemoryAttribute(rawValue: 0x1)
  public static let writeCombining = EFIMemoryAttribute(rawValue: 0x2)
  public static let writeThrough = EFIMemoryAttribute(rawValue: 0x4)
  public static let writeBack = EFIMemoryAttribute(rawValue: 0x8)
  public static let executeProtect = EFIMemoryAttribute(rawValue: 0x4000)
  public static let runtime = EFIMemoryAttribute(rawValue: 1 << 63)
}

/// One descriptor of the map: `pages` 4 KiB pages from `start`, all of one type and attribute.
public struct EFIMemoryRange: Equatable {
  public var start: UInt64
  public var pages: UInt64
  public var type: EFIMemoryType
  public var attribute: EFIMemoryAttribute

  public init(start: UInt64, pages: UInt64, type: EFIMemoryType, attribute: EFIMemoryAttribute) {
    self.start = start
    self.pages = pages
    self.type = type
    self.attribute = attribute
  }

  public var end: UInt64 { start + pages * EFIMemoryMap.pageSize }
}

/// Where AllocatePages may place an allocation (EFI_ALLOCATE_TYPE).
public enum EFIAllocation: Equatable {
  /// Anywhere (the highest free pages, as edk2 allocates).
  case anyPages
  /// Anywhere whose last byte is at or below this address.
  case maxAddress(UInt64)
  /// Exactly at this page-aligned address.
  case address(UInt64)
}

/// The firmware's view of guest RAM for boot services: a sorted list of non-overlapping
/// descriptors that AllocatePages, FreePages and the pool carve up, and that GetMemoryMap reports.
///
/// The list has a fixed capacity, reserved once, so that no service allocates while changing it
/// and GetMemoryMap after a failed ExitBootServices (the Linux stub's retry) never allocates.
/// Adjacent descriptors of one type and attribute merge. Every successful change bumps `mapKey`,
/// which ExitBootServices checks.
public struct EFIMemoryMap {
  public static let pageSize: UInt64 = 4096
  /// GetMemoryMap's stride: 40 bytes of EFI_MEMORY_DESCRIPTOR padded to 48, as edk2 reports it
  /// (callers must use the stride, not sizeof, so the padding also catches those that do not).
  public static let descriptorSize = 48
  public static let descriptorVersion: UInt32 = 1

  public private(set) var ranges: [EFIMemoryRange]
  /// Changes on every successful change to the map.
  public private(set) var mapKey: UInt64 = 1
  public let capacity: Int
  /// What the firmware described as other than free RAM (its image, the shared pool, MMIO):
  /// FreePages never turns these into free memory.
  private var fixed: [(start: UInt64, end: UInt64)] = []

  /// An empty map that holds at most `capacity` descriptors.
  public init(capacity: Int = 512) {
    self.capacity = max(capacity, 4)
    ranges = []
    ranges.reserveCapacity(self.capacity)
  }

  /// Describes `pages` pages from `start` as `type` (the firmware's own set-up: RAM, its image,
  /// the shared DMA pool, MMIO), replacing whatever the map said of them.
  public mutating func describe(start: UInt64, pages: UInt64, type: EFIMemoryType,
                                attribute: EFIMemoryAttribute) throws(EFIStatus) {
    guard pages > 0, start % EFIMemoryMap.pageSize == 0, let _ = EFIMemoryMap.end(start, pages) else {
      throw .invalidParameter
    }
    try replace(EFIMemoryRange(start: start, pages: pages, type: type, attribute: attribute))
    let end = start + pages * EFIMemoryMap.pageSize
    if type == .conventional {
      fixed.removeAll { start <= $0.start && $0.end <= end }
    } else {
      fixed.append((start, end))
    }
  }

  /// AllocatePages: takes `pages` free (conventional) pages and gives them `type`.
  /// - Returns: the first page's address.
  public mutating func allocatePages(_ placement: EFIAllocation, type: EFIMemoryType,
                                     pages: UInt64) throws(EFIStatus) -> UInt64 {
    guard type.isAllocatable, pages > 0, pages <= UInt64.max / EFIMemoryMap.pageSize else { throw .invalidParameter }
    let size = pages * EFIMemoryMap.pageSize
    let base: UInt64
    switch placement {
    case .address(let address):
      guard address % EFIMemoryMap.pageSize == 0, let end = EFIMemoryMap.end(address, pages) else {
        throw .notFound
      }
      guard let i = ranges.firstIndex(where: { $0.start <= address && end <= $0.end }),
            ranges[i].type == .conventional else { throw .notFound }
      base = address
    case .anyPages, .maxAddress:
      // The page after the highest usable byte (0 means no limit below 2^64).
      var limit: UInt64 = 0
      if case .maxAddress(let maxAddress) = placement {
        limit = (maxAddress &+ 1) & ~(EFIMemoryMap.pageSize - 1)
        if maxAddress == .max { limit = 0 } else if limit == 0 { throw .notFound }
      }
      var found: UInt64? = nil
      for r in ranges.reversed() where r.type == .conventional {
        let top = limit == 0 ? r.end : min(r.end, limit)
        if top > r.start, top - r.start >= size { found = top - size; break }
      }
      guard let found else { throw .outOfResources }
      base = found
    }
    let source = ranges[ranges.firstIndex(where: { $0.start <= base && base < $0.end })!]
    var attribute = source.attribute
    if type.isRuntime { attribute.insert(.runtime) }
    try replace(EFIMemoryRange(start: base, pages: pages, type: type, attribute: attribute))
    return base
  }

  /// FreePages: returns pages that AllocatePages (or the firmware) gave an allocatable type to
  /// free memory. Freeing part of an allocation is allowed (the Linux stub trims its
  /// over-allocations so).
  public mutating func freePages(at address: UInt64, pages: UInt64) throws(EFIStatus) {
    guard address % EFIMemoryMap.pageSize == 0, pages > 0 else { throw .invalidParameter }
    guard let end = EFIMemoryMap.end(address, pages), !fixed.contains(where: { $0.start < end && address < $0.end }) else {
      throw .notFound
    }
    // [address, end) must be covered, without holes, by allocated descriptors.
    guard var i = ranges.firstIndex(where: { $0.start <= address && address < $0.end }) else { throw .notFound }
    var attribute = ranges[i].attribute
    attribute.remove(.runtime)
    var covered = address
    while covered < end {
      guard i < ranges.count, ranges[i].start <= covered, ranges[i].type.isAllocatable else { throw .notFound }
      covered = ranges[i].end
      i += 1
    }
    try replace(EFIMemoryRange(start: address, pages: pages, type: .conventional, attribute: attribute))
  }

  /// The descriptor that holds `address`, if any.
  public func range(containing address: UInt64) -> EFIMemoryRange? {
    ranges.first { $0.start <= address && address < $0.end }
  }

  /// GetMemoryMap's size: what a caller's buffer must hold now.
  public var byteCount: Int { ranges.count * EFIMemoryMap.descriptorSize }

  /// GetMemoryMap: writes the descriptors (EFI_MEMORY_DESCRIPTOR at `descriptorSize` strides)
  /// into `buffer`, which must hold `byteCount` bytes; returns the bytes written, or nil (and
  /// writes nothing) when the buffer is too small.
  public func write(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
    guard buffer.count >= byteCount, let base = buffer.baseAddress else { return byteCount == 0 ? 0 : nil }
    for (n, r) in ranges.enumerated() {
      let d = base + n * EFIMemoryMap.descriptorSize
      d.storeBytes(of: r.type.rawValue.littleEndian, toByteOffset: 0, as: UInt32.self)
      d.storeBytes(of: 0, toByteOffset: 4, as: UInt32.self)
      d.storeBytes(of: r.start.littleEndian, toByteOffset: 8, as: UInt64.self)
      d.storeBytes(of: 0, toByteOffset: 16, as: UInt64.self)  // VirtualStart: identity, set by SVAM
      d.storeBytes(of: r.pages.littleEndian, toByteOffset: 24, as: UInt64.self)
      d.storeBytes(of: r.attribute.rawValue.littleEndian, toByteOffset: 32, as: UInt64.self)
      (d + 40).initializeMemory(as: UInt8.self, repeating: 0, count: EFIMemoryMap.descriptorSize - 40)
    }
    return byteCount
  }

  /// The end of `pages` pages from `start`, or nil when it passes 2^64.
  static func end(_ start: UInt64, _ pages: UInt64) -> UInt64? {
    guard pages <= UInt64.max / pageSize else { return nil }
    let (end, overflow) = start.addingReportingOverflow(pages * pageSize)
    return overflow ? nil : end
  }

  /// Puts `new` into the list: trims or splits the descriptors it overlaps, inserts it in order,
  /// merges it with equal neighbours and bumps the key. Fails, changing nothing, when the list
  /// would outgrow its capacity.
  private mutating func replace(_ new: EFIMemoryRange) throws(EFIStatus) {
    let start = new.start, end = new.end
    var i = ranges.firstIndex { $0.end > start } ?? ranges.count
    // A split in two adds two descriptors at most; check before changing anything.
    guard ranges.count + 2 <= capacity else { throw .outOfResources }
    while i < ranges.count, ranges[i].start < end {
      let r = ranges[i]
      if r.start < start && r.end > end {  // new lies strictly inside r: left, new, right
        ranges[i].pages = (start - r.start) / EFIMemoryMap.pageSize
        var right = r
        right.start = end
        right.pages = (r.end - end) / EFIMemoryMap.pageSize
        ranges.insert(right, at: i + 1)
        i += 1
        break
      } else if r.start < start {  // r overlaps new's start: keep r's head
        ranges[i].pages = (start - r.start) / EFIMemoryMap.pageSize
        i += 1
      } else if r.end > end {  // r overlaps new's end: keep r's tail
        ranges[i].start = end
        ranges[i].pages = (r.end - end) / EFIMemoryMap.pageSize
        break
      } else {  // r lies inside new
        ranges.remove(at: i)
      }
    }
    ranges.insert(new, at: i)
    // Merge with the following, then the preceding, descriptor when contiguous and equal.
    if i + 1 < ranges.count, EFIMemoryMap.mergeable(ranges[i], ranges[i + 1]) {
      ranges[i].pages += ranges[i + 1].pages
      ranges.remove(at: i + 1)
    }
    if i > 0, EFIMemoryMap.mergeable(ranges[i - 1], ranges[i]) {
      ranges[i - 1].pages += ranges[i].pages
      ranges.remove(at: i)
    }
    mapKey &+= 1
  }

  private static func mergeable(_ a: EFIMemoryRange, _ b: EFIMemoryRange) -> Bool {
    a.end == b.start && a.type == b.type && a.attribute == b.attribute
  }
}
