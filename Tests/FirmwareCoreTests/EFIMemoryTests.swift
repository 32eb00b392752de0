import Testing
import FirmwareCore

private let page = EFIMemoryMap.pageSize
private let ramBase: UInt64 = 0x4000_0000

/// A map of `pages` pages of write-back RAM at 1 GiB.
private func ram(pages: UInt64 = 256, capacity: Int = 512) throws -> EFIMemoryMap {
  var map = EFIMemoryMap(capacity: capacity)
  try map.describe(start: ramBase, pages: pages, type: .conventional, attribute: .writeBack)
  return map
}

/// The map's invariants: sorted, disjoint, no two neighbours that should have merged.
private func expectWellFormed(_ map: EFIMemoryMap, sourceLocation: SourceLocation = #_sourceLocation) {
  for (a, b) in zip(map.ranges, map.ranges.dropFirst()) {
    #expect(a.pages > 0 && a.end <= b.start, "overlap or empty: \(a) \(b)", sourceLocation: sourceLocation)
    #expect(!(a.end == b.start && a.type == b.type && a.attribute == b.attribute),
            "unmerged neighbours \(a) \(b)", sourceLocation: sourceLocation)
  }
}

@Suite struct EFIMemoryMapTests {
  @Test func firmwareRangesSplitTheRAMAndMerge() throws {
    var map = try ram()
    try map.describe(start: ramBase + 16 * page, pages: 8, type: .bootServicesCode, attribute: .writeBack)
    #expect(map.ranges.map(\.type) == [.conventional, .bootServicesCode, .conventional])
    #expect(map.ranges.map(\.pages) == [16, 8, 232])
    // Describing it back as RAM restores one descriptor.
    try map.describe(start: ramBase + 16 * page, pages: 8, type: .conventional, attribute: .writeBack)
    #expect(map.ranges == [EFIMemoryRange(start: ramBase, pages: 256, type: .conventional, attribute: .writeBack)])
    #expect(throws: EFIStatus.invalidParameter) {
      try map.describe(start: ramBase + 1, pages: 1, type: .reserved, attribute: .writeBack)
    }
    #expect(throws: EFIStatus.invalidParameter) {
      try map.describe(start: UInt64.max - page + 1, pages: 2, type: .reserved, attribute: .writeBack)
    }
  }

  @Test func anyPagesTakesTheHighestFreePagesAndChangesTheKey() throws {
    var map = try ram()
    let key = map.mapKey
    let a = try map.allocatePages(.anyPages, type: .loaderData, pages: 4)
    #expect(a == ramBase + 252 * page)
    #expect(map.mapKey != key)
    #expect(map.range(containing: a)?.type == .loaderData)
    #expect(map.range(containing: a)?.attribute == .writeBack)
    let b = try map.allocatePages(.anyPages, type: .loaderData, pages: 4)
    #expect(b == ramBase + 248 * page)
    // The two LoaderData allocations are one descriptor.
    #expect(map.ranges.count == 2)
    expectWellFormed(map)
  }

  @Test func maxAddressKeepsTheLastByteAtOrBelowTheLimit() throws {
    var map = try ram()
    let limit = ramBase + 100 * page - 1
    let a = try map.allocatePages(.maxAddress(limit), type: .loaderCode, pages: 10)
    #expect(a == ramBase + 90 * page)
    // A limit inside a page rounds down to whole pages.
    let b = try map.allocatePages(.maxAddress(ramBase + 50 * page + 7), type: .loaderCode, pages: 1)
    #expect(b == ramBase + 49 * page)
    #expect(throws: EFIStatus.outOfResources) {
      try map.allocatePages(.maxAddress(ramBase + page - 1), type: .loaderCode, pages: 2)
    }
    // No limit at all.
    let c = try map.allocatePages(.maxAddress(.max), type: .loaderCode, pages: 1)
    #expect(c == ramBase + 255 * page)
  }

  @Test func addressAllocationsNeedFreePagesThere() throws {
    var map = try ram()
    let at = ramBase + 64 * page
    #expect(try map.allocatePages(.address(at), type: .loaderCode, pages: 16) == at)
    #expect(throws: EFIStatus.notFound) { try map.allocatePages(.address(at + 15 * page), type: .loaderCode, pages: 2) }
    #expect(throws: EFIStatus.notFound) { try map.allocatePages(.address(at - 1), type: .loaderCode, pages: 1) }
    #expect(throws: EFIStatus.notFound) { try map.allocatePages(.address(ramBase + 255 * page), type: .loaderCode, pages: 2) }
    #expect(throws: EFIStatus.notFound) { try map.allocatePages(.address(0), type: .loaderCode, pages: 1) }
    #expect(throws: EFIStatus.notFound) { try map.allocatePages(.address(UInt64.max & ~(page - 1)), type: .loaderCode, pages: 2) }
  }

  @Test func refusesFreeTypesZeroPagesAndOversizedRequests() throws {
    var map = try ram()
    for type in [EFIMemoryType.conventional, .persistent, .unaccepted, EFIMemoryType(rawValue: 16)] {
      #expect(throws: EFIStatus.invalidParameter) { try map.allocatePages(.anyPages, type: type, pages: 1) }
    }
    #expect(throws: EFIStatus.invalidParameter) { try map.allocatePages(.anyPages, type: .loaderData, pages: 0) }
    #expect(throws: EFIStatus.outOfResources) { try map.allocatePages(.anyPages, type: .loaderData, pages: 257) }
    #expect(throws: EFIStatus.invalidParameter) { try map.allocatePages(.anyPages, type: .loaderData, pages: .max) }
    // OEM and OS-loader types are allowed.
    _ = try map.allocatePages(.anyPages, type: EFIMemoryType(rawValue: 0x8000_0001), pages: 1)
    _ = try map.allocatePages(.anyPages, type: EFIMemoryType(rawValue: 0x7000_0000), pages: 1)
  }

  /// The Linux stub over-allocates, then frees the unaligned head and tail.
  @Test func partialFreesTrimAnAllocationAndFreeingAllMergesBack() throws {
    var map = try ram()
    let original = map.ranges
    let a = try map.allocatePages(.anyPages, type: .loaderData, pages: 32)
    try map.freePages(at: a, pages: 3)
    try map.freePages(at: a + 27 * page, pages: 5)
    #expect(map.range(containing: a + 3 * page) == EFIMemoryRange(start: a + 3 * page, pages: 24, type: .loaderData, attribute: .writeBack))
    #expect(map.range(containing: a)?.type == .conventional)
    #expect(map.range(containing: a + 27 * page)?.type == .conventional)
    expectWellFormed(map)
    try map.freePages(at: a + 3 * page, pages: 24)
    #expect(map.ranges == original)
  }

  @Test func freeingWhatWasNotAllocatedIsNotFound() throws {
    var map = try ram()
    try map.describe(start: ramBase + 200 * page, pages: 4, type: .mmio, attribute: .uncacheable)
    let a = try map.allocatePages(.address(ramBase + 10 * page), type: .bootServicesData, pages: 4)
    #expect(throws: EFIStatus.notFound) { try map.freePages(at: ramBase, pages: 1) }            // free memory
    #expect(throws: EFIStatus.notFound) { try map.freePages(at: ramBase + 200 * page, pages: 1) } // MMIO
    #expect(throws: EFIStatus.notFound) { try map.freePages(at: a, pages: 5) }                   // runs past it
    #expect(throws: EFIStatus.notFound) { try map.freePages(at: 0x1000, pages: 1) }              // no RAM
    #expect(throws: EFIStatus.invalidParameter) { try map.freePages(at: a + 1, pages: 1) }
    #expect(throws: EFIStatus.invalidParameter) { try map.freePages(at: a, pages: 0) }
    // Two adjacent allocations of different types free together.
    _ = try map.allocatePages(.address(a + 4 * page), type: .loaderCode, pages: 2)
    try map.freePages(at: a, pages: 6)
    #expect(map.range(containing: a)?.pages == 200)
  }

  @Test func runtimeAllocationsCarryTheRuntimeAttributeUntilFreed() throws {
    var map = try ram()
    let a = try map.allocatePages(.anyPages, type: .runtimeServicesData, pages: 16)
    #expect(map.range(containing: a)?.attribute == [.writeBack, .runtime])
    try map.freePages(at: a, pages: 16)
    #expect(map.ranges.count == 1 && map.ranges[0].attribute == .writeBack)
  }

  @Test func aFullMapRefusesWithoutChanging() throws {
    var map = try ram(capacity: 4)
    _ = try map.allocatePages(.address(ramBase + 10 * page), type: .loaderData, pages: 1)  // 3 descriptors
    let before = map.ranges, key = map.mapKey
    #expect(throws: EFIStatus.outOfResources) {
      try map.allocatePages(.address(ramBase + 20 * page), type: .loaderCode, pages: 1)
    }
    #expect(map.ranges == before && map.mapKey == key)
  }

  @Test func getMemoryMapWritesDescriptorsAtTheStride() throws {
    var map = try ram()
    let a = try map.allocatePages(.anyPages, type: .runtimeServicesCode, pages: 2)
    #expect(map.byteCount == 2 * 48)
    var small = [UInt8](repeating: 0xAA, count: 95)
    #expect(small.withUnsafeMutableBytes { map.write(into: $0) } == nil)
    #expect(small.allSatisfy { $0 == 0xAA })
    var bytes = [UInt8](repeating: 0xAA, count: 200)
    #expect(bytes.withUnsafeMutableBytes { map.write(into: $0) } == 96)
    #expect(bytes.le32(at: 0) == 7 && bytes.le64(at: 8) == ramBase && bytes.le64(at: 16) == 0)
    #expect(bytes.le64(at: 24) == 254 && bytes.le64(at: 32) == 8)
    #expect(bytes.le32(at: 48) == 5 && bytes.le64(at: 56) == a && bytes.le64(at: 72) == 2)
    #expect(bytes.le64(at: 80) == 0x8000_0000_0000_0008)
    #expect(bytes[40..<48].allSatisfy { $0 == 0 } && bytes[88..<96].allSatisfy { $0 == 0 })
    #expect(bytes[96...].allSatisfy { $0 == 0xAA })
  }

  /// Random allocations and frees against a page-by-page model of the same RAM.
  @Test func matchesAPageModelOverRandomOperations() throws {
    var map = try ram(pages: 128)
    var model = [EFIMemoryType](repeating: .conventional, count: 128)
    var rng = SplitMix64(seed: 0x5EED)
    let types: [EFIMemoryType] = [.loaderCode, .loaderData, .bootServicesData, .runtimeServicesData, .acpiReclaim]
    for _ in 0..<4000 {
      let pages = rng.next() % 9
      let start = rng.next() % 130
      let type = types[Int(rng.next() % UInt64(types.count))]
      switch rng.next() % 3 {
      case 0:
        let free = start + pages <= 128 && pages > 0 && (start..<start + pages).allSatisfy { model[Int($0)] == .conventional }
        do {
          let a = try map.allocatePages(.address(ramBase + start * page), type: type, pages: pages)
          #expect(free && a == ramBase + start * page)
          for p in start..<start + pages { model[Int(p)] = type }
        } catch {
          #expect(!free, "refused \(pages) at \(start): \(error)")
        }
      case 1:
        do {
          let a = try map.allocatePages(.maxAddress(ramBase + start * page - 1), type: type, pages: pages)
          let first = Int((a - ramBase) / page)
          #expect(first + Int(pages) <= Int(start))
          #expect(model[first..<first + Int(pages)].allSatisfy { $0 == .conventional })
          // The highest fit: no free run of that length above it and below the limit.
          let top = min(Int(start), 128)
          if first + Int(pages) < top {
            for q in (first + 1)...(top - Int(pages)) {
              #expect(!model[q..<q + Int(pages)].allSatisfy { $0 == .conventional }, "a higher fit at \(q)")
            }
          }
          for p in first..<first + Int(pages) { model[p] = type }
        } catch {
          #expect(error == .outOfResources || error == .invalidParameter)
        }
      default:
        let allocated = pages > 0 && start + pages <= 128 && (start..<start + pages).allSatisfy { model[Int($0)] != .conventional }
        do {
          try map.freePages(at: ramBase + start * page, pages: pages)
          #expect(allocated)
          for p in start..<start + pages { model[Int(p)] = .conventional }
        } catch {
          #expect(!allocated, "refused to free \(pages) at \(start): \(error)")
        }
      }
      expectWellFormed(map)
    }
    for (p, type) in model.enumerated() {
      #expect(map.range(containing: ramBase + UInt64(p) * page)?.type == type)
    }
    #expect(map.ranges.reduce(0) { $0 + $1.pages } == 128)
  }
}

@Suite struct EFIPoolTests {
  /// A real buffer of `pages` pages, described to the map as RAM.
  final class Arena {
    let base: UnsafeMutableRawPointer
    var map = EFIMemoryMap()
    var pool = EFIPool()
    init(pages: Int) throws {
      base = UnsafeMutableRawPointer.allocate(byteCount: pages * 4096, alignment: 4096)
      try map.describe(start: UInt64(UInt(bitPattern: base)), pages: UInt64(pages), type: .conventional, attribute: .writeBack)
    }
    deinit { base.deallocate() }
    func allocate(_ size: Int, _ type: EFIMemoryType = .loaderData) throws(EFIStatus) -> UInt64 {
      try pool.allocate(type: type, size: size, in: &map)
    }
    func free(_ address: UInt64) throws(EFIStatus) { try pool.free(address, in: &map) }
    func fill(_ address: UInt64, _ size: Int, _ byte: UInt8) {
      UnsafeMutableRawPointer(bitPattern: UInt(address))!.initializeMemory(as: UInt8.self, repeating: byte, count: size)
    }
    func holds(_ address: UInt64, _ size: Int, _ byte: UInt8) -> Bool {
      UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(address)), count: size).allSatisfy { $0 == byte }
    }
  }

  @Test func manySmallBlocksAreAlignedDisjointAndTyped() throws {
    let arena = try Arena(pages: 1024)
    var blocks: [(UInt64, Int)] = []
    for n in 0..<3000 {
      let size = [0, 1, 8, 24, 100, 500, 4000][n % 7]
      let a = try arena.allocate(size)
      #expect(a % 16 == 0)
      arena.fill(a, size, UInt8(truncatingIfNeeded: n))
      blocks.append((a, size))
    }
    for (n, (a, size)) in blocks.enumerated() {
      #expect(arena.holds(a, size, UInt8(truncatingIfNeeded: n)))
      #expect(arena.map.range(containing: a)?.type == .loaderData)
    }
  }

  @Test func typesGetTheirOwnPages() throws {
    let arena = try Arena(pages: 64)
    let data = try arena.allocate(64, .loaderData)
    let acpi = try arena.allocate(64, .acpiReclaim)
    #expect(arena.map.range(containing: data)?.type == .loaderData)
    #expect(arena.map.range(containing: acpi)?.type == .acpiReclaim)
    #expect(throws: EFIStatus.invalidParameter) { try arena.allocate(8, .conventional) }
  }

  @Test func freedBlocksAreReusedAndDoubleFreesRefused() throws {
    let arena = try Arena(pages: 64)
    let a = try arena.allocate(40)
    let b = try arena.allocate(40)
    try arena.free(a)
    #expect(throws: EFIStatus.invalidParameter) { try arena.free(a) }
    #expect(try arena.allocate(33) == a)  // same size class
    #expect(try arena.allocate(40) != b)
    #expect(throws: EFIStatus.invalidParameter) { try arena.free(b + 16) }   // not a block start
    #expect(throws: EFIStatus.invalidParameter) { try arena.free(b + 8) }    // misaligned
    #expect(throws: EFIStatus.invalidParameter) { try arena.free(0x10) }     // outside RAM
    #expect(throws: EFIStatus.invalidParameter) { try arena.free(0) }
  }

  @Test func largeBlocksOwnPagesThatGoBackToTheMap() throws {
    let arena = try Arena(pages: 64)
    let before = arena.map.ranges
    let a = try arena.allocate(100_000)
    arena.fill(a, 100_000, 0x5A)
    #expect(arena.map.range(containing: a)?.type == .loaderData)
    try arena.free(a)
    #expect(arena.map.ranges == before)
    #expect(throws: EFIStatus.invalidParameter) { try arena.free(a) }
    #expect(throws: EFIStatus.outOfResources) { try arena.allocate(65 * 4096) }
    #expect(throws: EFIStatus.outOfResources) { try arena.allocate(Int.max) }
    #expect(throws: EFIStatus.invalidParameter) { try arena.allocate(-1) }
  }
}
