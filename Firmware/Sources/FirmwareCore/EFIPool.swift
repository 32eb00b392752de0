/// AllocatePool and FreePool: small allocations carved from pages of the map, so that the map
/// shows each pool type (a loader's LoaderData, the stub's ACPIReclaim memory map).
///
/// Each memory type has its own 64 KiB chunks. A block is a power of two from 32 bytes to
/// 16 KiB, header included, and goes back to a per-size free list, so that the thousands of
/// small allocations a boot menu makes cost constant time each. Larger requests get pages of
/// their own, which FreePool returns to the map. Every block starts with a 16-byte header
/// (magic, type, size); FreePool checks it, so a double free or a stray pointer is
/// EFI_INVALID_PARAMETER instead of corruption.
///
/// The pool works on real addresses: the firmware's RAM, or a test's buffer described in the map.
public struct EFIPool {
  static let headerSize: UInt64 = 16
  static let liveMagic: UInt32 = 0x4C4F_4F50  // "POOL"
  static let freeMagic: UInt32 = 0x4545_5246  // "FREE"
  static let chunkPages: UInt64 = 16
  static let smallestShift = 5  // 32-byte blocks
  static let largestShift = 14  // 16 KiB blocks; larger requests get their own pages
  /// A block's size field has this bit set when the block owns whole pages.
  static let ownsPages: UInt64 = 1

  struct Arena {
    var type: EFIMemoryType
    var next: UInt64 = 0
    var end: UInt64 = 0
    /// Free-list heads by size class (`smallestShift` … `largestShift`); 0 is empty.
    var free: [UInt64]
  }
  private var state: [Arena] = []

  public init() {}

  /// AllocatePool: `size` bytes of `type`, 16-byte aligned.
  public mutating func allocate(type: EFIMemoryType, size: Int,
                                in map: inout EFIMemoryMap) throws(EFIStatus) -> UInt64 {
    guard type.isAllocatable, size >= 0 else { throw .invalidParameter }
    guard UInt64(size) <= UInt64.max / 2 - EFIMemoryMap.pageSize else { throw .outOfResources }
    let needed = (UInt64(size) + 15) & ~15 + EFIPool.headerSize
    if needed > 1 << EFIPool.largestShift {
      let pages = (needed + EFIMemoryMap.pageSize - 1) / EFIMemoryMap.pageSize
      let block = try map.allocatePages(.anyPages, type: type, pages: pages)
      EFIPool.writeHeader(block, magic: EFIPool.liveMagic, type: type,
                          size: pages * EFIMemoryMap.pageSize | EFIPool.ownsPages)
      return block + EFIPool.headerSize
    }
    var shift = EFIPool.smallestShift
    while UInt64(1) << shift < needed { shift += 1 }
    let blockSize = UInt64(1) << shift
    let a = arenaIndex(type)
    let cls = shift - EFIPool.smallestShift
    let block: UInt64
    if state[a].free[cls] != 0 {
      block = state[a].free[cls]
      state[a].free[cls] = EFIPool.pointer(block + EFIPool.headerSize).load(as: UInt64.self)
    } else {
      if state[a].end - state[a].next < blockSize {
        let chunk = try map.allocatePages(.anyPages, type: type, pages: EFIPool.chunkPages)
        state[a].next = chunk
        state[a].end = chunk + EFIPool.chunkPages * EFIMemoryMap.pageSize
      }
      block = state[a].next
      state[a].next += blockSize
    }
    EFIPool.writeHeader(block, magic: EFIPool.liveMagic, type: type, size: blockSize)
    return block + EFIPool.headerSize
  }

  /// FreePool: returns a block AllocatePool gave out.
  public mutating func free(_ address: UInt64, in map: inout EFIMemoryMap) throws(EFIStatus) {
    guard address % 16 == 0, address >= EFIPool.headerSize else { throw .invalidParameter }
    let block = address - EFIPool.headerSize
    // Only read a header in memory the map says was allocated, of the type the header claims.
    guard let range = map.range(containing: block), range.type.isAllocatable else { throw .invalidParameter }
    let header = EFIPool.pointer(block)
    guard header.load(as: UInt32.self) == EFIPool.liveMagic,
          header.load(fromByteOffset: 4, as: UInt32.self) == range.type.rawValue else { throw .invalidParameter }
    let size = header.load(fromByteOffset: 8, as: UInt64.self)
    if size & EFIPool.ownsPages != 0 {
      let bytes = size & ~EFIPool.ownsPages
      guard block % EFIMemoryMap.pageSize == 0, bytes % EFIMemoryMap.pageSize == 0, bytes > 0 else {
        throw .invalidParameter
      }
      header.storeBytes(of: EFIPool.freeMagic, as: UInt32.self)
      try map.freePages(at: block, pages: bytes / EFIMemoryMap.pageSize)
      return
    }
    var shift = EFIPool.smallestShift
    while shift <= EFIPool.largestShift, UInt64(1) << shift != size { shift += 1 }
    guard shift <= EFIPool.largestShift, let a = state.firstIndex(where: { $0.type == range.type }) else { throw .invalidParameter }
    let cls = shift - EFIPool.smallestShift
    header.storeBytes(of: EFIPool.freeMagic, as: UInt32.self)
    EFIPool.pointer(address).storeBytes(of: state[a].free[cls], as: UInt64.self)
    state[a].free[cls] = block
  }

  private mutating func arenaIndex(_ type: EFIMemoryType) -> Int {
    if let a = state.firstIndex(where: { $0.type == type }) { return a }
    state.append(Arena(type: type, free: [UInt64](repeating: 0, count: EFIPool.largestShift - EFIPool.smallestShift + 1)))
    return state.count - 1
  }

  private static func pointer(_ address: UInt64) -> UnsafeMutableRawPointer {
    UnsafeMutableRawPointer(bitPattern: UInt(address))!
  }

  private static func writeHeader(_ block: UInt64, magic: UInt32, type: EFIMemoryType, size: UInt64) {
    let header = pointer(block)
    header.storeBytes(of: magic, as: UInt32.self)
    header.storeBytes(of: type.rawValue, toByteOffset: 4, as: UInt32.self)
    header.storeBytes(of: size, toByteOffset: 8, as: UInt64.self)
  }
}
