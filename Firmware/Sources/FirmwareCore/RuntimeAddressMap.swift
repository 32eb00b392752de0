/// The virtual addresses an OS gives the firmware's runtime memory: the EFI_MEMORY_RUNTIME
/// descriptors of the memory map it passes to SetVirtualAddressMap (UEFI 2.10 §8.4), read in
/// place (no copy, no allocation: the service runs after ExitBootServices). The map is the OS's
/// input: every descriptor is bounds-checked and every region checked for overflow.
public struct RuntimeAddressMap<Bytes: RandomAccessCollection<UInt8>> where Bytes.Index == Int {
  /// EFI_MEMORY_DESCRIPTOR's size in version 1; later versions may append fields.
  public static var minimumDescriptorSize: Int { 40 }
  /// A bound on the stride, so that a huge one cannot hide a short map.
  public static var maximumDescriptorSize: Int { 4096 }
  /// Bounds the quadratic coverage walk (a real map has tens of entries).
  public static var maximumDescriptors: Int { 1024 }

  /// One EFI_MEMORY_RUNTIME descriptor: `size` bytes at `physicalStart`, seen at `virtualStart`.
  public struct Region: Equatable {
    public var physicalStart: UInt64
    public var virtualStart: UInt64
    public var size: UInt64
    public init(physicalStart: UInt64, virtualStart: UInt64, size: UInt64) {
      self.physicalStart = physicalStart
      self.virtualStart = virtualStart
      self.size = size
    }
    /// What to add to a physical address inside the region (modulo 2^64).
    public var shift: UInt64 { virtualStart &- physicalStart }
    public func contains(_ address: UInt64) -> Bool { address >= physicalStart && address - physicalStart < size }
  }

  let bytes: Bytes
  let descriptorSize: Int
  /// The number of descriptors (of any type) in the map.
  public let count: Int

  /// Reads `bytes` as descriptors of `descriptorSize` bytes, DescriptorVersion `version`.
  public init(_ bytes: Bytes, descriptorSize: Int, version: UInt32) throws(RuntimeAddressMapError) {
    guard version == 1 else { throw .version(version) }
    guard descriptorSize >= Self.minimumDescriptorSize, descriptorSize <= Self.maximumDescriptorSize,
          descriptorSize % 8 == 0 else { throw .descriptorSize(descriptorSize) }
    guard bytes.count % descriptorSize == 0 else { throw .mapSize(bytes.count) }
    guard bytes.count / descriptorSize <= Self.maximumDescriptors else { throw .tooManyDescriptors(bytes.count / descriptorSize) }
    self.bytes = bytes
    self.descriptorSize = descriptorSize
    self.count = bytes.count / descriptorSize
    for i in 0..<count where isRuntime(i) {
      guard decode(i) != nil else { throw .badRegion(index: i) }
    }
  }

  /// The runtime region of descriptor `index`, or nil when the descriptor is not runtime memory.
  public func region(_ index: Int) -> Region? { isRuntime(index) ? decode(index) : nil }

  /// `address` as the OS will see it, or nil when no runtime descriptor holds it.
  public func convert(_ address: UInt64) -> UInt64? {
    for i in 0..<count {
      if let r = region(i), r.contains(address) { return address &+ r.shift }
    }
    return nil
  }

  /// The one shift that maps all of [start, end): nil when part of it lies in no runtime
  /// descriptor or its parts would move apart (a relocated image needs one shift).
  public func shift(covering start: UInt64, end: UInt64) -> UInt64? {
    guard start < end else { return nil }
    var cursor = start
    var shift: UInt64? = nil
    while cursor < end {
      var next: Region? = nil
      for i in 0..<count {
        if let r = region(i), r.contains(cursor) { next = r; break }
      }
      guard let r = next, shift == nil || shift == r.shift else { return nil }
      shift = r.shift
      cursor = r.physicalStart + r.size  // > cursor: checked for overflow when read
    }
    return shift
  }

  func isRuntime(_ index: Int) -> Bool {
    guard let attribute = bytes.le64(at: index * descriptorSize + 32) else { return false }
    return EFIMemoryAttribute(rawValue: attribute).contains(.runtime)
  }

  /// Type u32, pad, PhysicalStart, VirtualStart, NumberOfPages, Attribute: page-aligned
  /// addresses whose regions end within the 64-bit space.
  func decode(_ index: Int) -> Region? {
    let base = index * descriptorSize
    guard let physical = bytes.le64(at: base + 8), let virtual = bytes.le64(at: base + 16),
          let pages = bytes.le64(at: base + 24),
          physical % EFIMemoryMap.pageSize == 0, virtual % EFIMemoryMap.pageSize == 0,
          pages <= UInt64.max / EFIMemoryMap.pageSize else { return nil }
    let size = pages * EFIMemoryMap.pageSize
    // Both ends representable: a region ending at or past 2^64 would wrap.
    guard physical <= UInt64.max - size, virtual <= UInt64.max - size else { return nil }
    return Region(physicalStart: physical, virtualStart: virtual, size: size)
  }
}

/// Why a SetVirtualAddressMap memory map was refused (EFI_INVALID_PARAMETER).
public enum RuntimeAddressMapError: Error, Equatable {
  case version(UInt32)
  case descriptorSize(Int)
  case mapSize(Int)
  case tooManyDescriptors(Int)
  case badRegion(index: Int)
}
