import Testing

@testable import RealmMeasurement

/// A small Realm: 16 MiB of RAM at 2 GiB (33 IPA bits: start level 2, 2 MiB blocks), two granules
/// of "firmware" at the RAM base and a 64 KiB "DTB" (16 granules) at the top of RAM.
struct SmallRealm {
  static let ramBase: UInt64 = 0x8000_0000
  static let ramSize: UInt64 = 16 << 20
  static let dtbAddress: UInt64 = ramBase + ramSize - 0x1_0000
  static let firmware = granule(0x11) + granule(0x22)
  static let dtb = (0..<16).flatMap { granule(0x40 + UInt8($0)) }

  static func launch(sha512: Bool) throws -> RealmLaunch {
    RealmLaunch(
      parameters: RealmParameters(ipaBits: 33, hashAlgorithm: sha512 ? .sha512 : .sha256, lpa2: true, breakpoints: 5, watchpoints: 3),
      ram: ramBase..<ramBase + ramSize,
      regions: [.init(address: ramBase, bytes: firmware), .init(address: dtbAddress, bytes: dtb)],
      bootCPU: try RECParameters(pc: ramBase, gprs: [dtbAddress]))
  }

  /// params, then each granule in ascending order, then vCPU 0.
  static func handDataAndREC(sha512: Bool, lpa2: Bool = true) -> HandRIM {
    var hand = HandRIM(flags: lpa2 ? 1 : 0, s2sz: 33, bps: 5, wps: 3, sha512: sha512)
    hand.data(ipa: ramBase, granule: granule(0x11))
    hand.data(ipa: ramBase + 0x1000, granule: granule(0x22))
    for index in 0..<16 {
      hand.data(ipa: dtbAddress + UInt64(index) * 0x1000, granule: granule(0x40 + UInt8(index)))
    }
    hand.rec(pc: ramBase, x0: dtbAddress)
    return hand
  }
}

@Suite struct RealmLaunchTests {
  /// RMM 2.0-bet0 (TF-RMM 0.9.0, series v13+): REALM_CREATE, DATA per granule, REC. No RIPAS.
  @Test(arguments: [false, true])
  func rmm20(sha512: Bool) throws {
    let launch = try SmallRealm.launch(sha512: sha512)
    let rim = try launch.measure(rules: .rmm2_0)
    #expect(rim.digest == SmallRealm.handDataAndREC(sha512: sha512).digest)
    #expect(rim.algorithm == (sha512 ? .sha512 : .sha256))
  }

  /// RMM 1.0 with the series v12 kernel: the same, then INIT_RIPAS over what populate left alone.
  /// With 2 MiB blocks: the first block (level-3 table made by the firmware's DATA_CREATE) gives
  /// one 4 KiB entry per free page from 0x80002000; blocks 1-6 are one 2 MiB entry each; the last
  /// block (DTB at its top) gives 4 KiB entries up to the DTB.
  @Test(arguments: [false, true])
  func rmm10(sha512: Bool) throws {
    var hand = SmallRealm.handDataAndREC(sha512: sha512, lpa2: false)
    let base = SmallRealm.ramBase
    for page in stride(from: base + 0x2000, to: base + 0x20_0000, by: 0x1000) {
      hand.ripas(base: page, top: page + 0x1000)
    }
    for block in stride(from: base + 0x20_0000, to: base + 0xe0_0000, by: 0x20_0000) {
      hand.ripas(base: block, top: block + 0x20_0000)
    }
    for page in stride(from: base + 0xe0_0000, to: SmallRealm.dtbAddress, by: 0x1000) {
      hand.ripas(base: page, top: page + 0x1000)
    }
    var launch = try SmallRealm.launch(sha512: sha512)
    launch.parameters.lpa2 = false
    var operations: [MeasuredOperation] = []
    try launch.forEachOperation(rules: .rmm1_0) { operations.append($0) }
    #expect(operations.count == 18 + 1 + (510 + 6 + 496))
    #expect(try launch.measure(rules: .rmm1_0).digest == hand.digest)
  }

  /// The rule sets give different RIMs for the same Realm; the algorithm changes it too.
  @Test func rulesAndAlgorithmMatter() throws {
    let launch = try SmallRealm.launch(sha512: false)
    let rmm20 = try launch.measure(rules: .rmm2_0).hex
    let rmm10 = try launch.measure(rules: .rmm1_0).hex
    let sha512 = try SmallRealm.launch(sha512: true).measure(rules: .rmm2_0).hex
    #expect(rmm20 != rmm10)
    #expect(sha512.count == 128 && !sha512.hasPrefix(rmm20))
  }

  /// A REC that is not runnable is not measured (DEN0137 B4.3.12.4).
  @Test func notRunnableRECLeavesTheRIM() throws {
    var rim = RealmInitialMeasurement(parameters: RealmParameters(ipaBits: 33))
    let before = rim
    rim.extendREC(try RECParameters(runnable: false, pc: 0x8000_0000))
    #expect(rim == before)
  }

  /// An unmeasured granule still extends the RIM, with flags 0 and no content hash (C1.11).
  @Test func unmeasuredData() throws {
    var rim = RealmInitialMeasurement(parameters: RealmParameters(ipaBits: 33))
    var hand = HandRIM(flags: 0, s2sz: 33, bps: 0, wps: 0, sha512: false)
    try rim.extendData(ipa: 0x8000_0000, contents: nil)
    var descriptor = [UInt8](repeating: 0, count: 256)
    put(0x100, &descriptor, at: 0x08)
    for index in 0..<64 { descriptor[0x10 + index] = hand.rim[index] }
    put(0x8000_0000, &descriptor, at: 0x50)
    hand.rim = field(descriptor, sha512: false)
    #expect(rim.digest == hand.digest)
  }

  /// Contents placed inside a region (a mapped file) measure as the region's bytes, the zeros
  /// around them included, granule by granule.
  @Test func contentsAtAnOffsetMeasureAsTheZeroPaddedRegion() throws {
    var padded = try SmallRealm.launch(sha512: false)
    var placed = padded
    let contents: [UInt8] = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
    padded.regions[0] = .init(
      address: SmallRealm.ramBase,
      bytes: [UInt8](repeating: 0, count: 100) + contents + [UInt8](repeating: 0, count: 8192 - 5100))
    placed.regions[0] = .init(address: SmallRealm.ramBase, size: 8192, contentOffset: 100, contents: contents)
    #expect(try placed.measure(rules: .rmm2_0) == padded.measure(rules: .rmm2_0))
    #expect(try placed.measure(rules: .rmm1_0) == padded.measure(rules: .rmm1_0))
  }

  /// Measuring hands each region's contents back as it goes, in order, about a MiB at a time, and
  /// all of it: a mapped file's hashed pages can then leave the process.
  @Test func contentsAreHandedBackAsTheyAreHashed() throws {
    final class Recorder: RegionContents, @unchecked Sendable {
      let bytes = [UInt8](repeating: 0x5A, count: (3 << 20) + 777)
      var handedBack: [Range<Int>] = []
      func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R { try bytes.withBytes(body) }
      func done(with range: Range<Int>) { handedBack.append(range) }
    }
    let recorder = Recorder()
    var launch = try SmallRealm.launch(sha512: false)
    launch.ram = SmallRealm.ramBase..<SmallRealm.ramBase + (64 << 20)
    launch.regions = [.init(address: SmallRealm.ramBase + 0x10_0000, size: (4 << 20), contentOffset: 100, contents: recorder)]
    _ = try launch.measure(rules: .rmm2_0)
    #expect(recorder.handedBack.first?.lowerBound == 0 && recorder.handedBack.last?.upperBound == recorder.bytes.count)
    #expect(zip(recorder.handedBack, recorder.handedBack.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
    #expect(recorder.handedBack.allSatisfy { $0.count <= (1 << 20) + 4096 })
  }

  @Test func invalidLaunches() throws {
    var launch = try SmallRealm.launch(sha512: false)
    launch.regions[1].address = 0x8000_1000  // overlaps the firmware
    #expect(throws: RIMError.overlappingData(address: 0x8000_1000)) { try launch.measure(rules: .rmm2_0) }
    launch = try SmallRealm.launch(sha512: false)
    launch.regions[1].address = SmallRealm.dtbAddress + 0x1000  // runs past the end of RAM
    #expect(throws: RIMError.dataOutsideRAM(address: SmallRealm.dtbAddress + 0x1000)) { try launch.measure(rules: .rmm2_0) }
    launch = try SmallRealm.launch(sha512: false)
    launch.regions[0].size -= 1
    #expect(throws: RIMError.unalignedData(address: SmallRealm.ramBase, size: 8191)) { try launch.measure(rules: .rmm2_0) }
    launch = try SmallRealm.launch(sha512: false)
    launch.regions[0].contentOffset = 1  // the contents then end one byte past the region
    #expect(throws: RIMError.contentsOutsideRegion(address: SmallRealm.ramBase, size: 8192)) { try launch.measure(rules: .rmm2_0) }
    launch = try SmallRealm.launch(sha512: false)
    launch.parameters.ipaBits = 31
    #expect(throws: RIMError.badIPAWidth(31)) { try launch.measure(rules: .rmm2_0) }
  }
}

/// How INIT_RIPAS is split into RTT entries (Linux's `ripas_change()`/`find_map_level()` with
/// TF-RMM 0.8.0's `smc_rtt_init_ripas()`), checked against layouts worked out by hand.
@Suite struct RTTWalkTests {
  func entries(bits: Int, ram: Range<UInt64>, populated: [UInt64]) -> [Range<UInt64>] {
    RTTWalk(ipaBits: bits).initRIPASEntries(over: ram, populated: Set(populated))
  }

  @Test func startLevels() {
    #expect(RTTWalk(ipaBits: 33).startLevel == 2)  // 8 concatenated level-2 tables
    #expect(RTTWalk(ipaBits: 34).startLevel == 2)
    #expect(RTTWalk(ipaBits: 35).startLevel == 1)
    #expect(RTTWalk(ipaBits: 44).startLevel == 0)
  }

  /// Cross-check with veraison/cca-realm-measurements (src/realm.rs, `test_block_sizes`): the
  /// block sizes its `translation_block_sizes()` documents per IPA width (concatenated starting
  /// tables when the first level would have 16 entries or fewer) are the levels from our
  /// starting level to 3, and its `find_block_size()` examples are `find_map_level()`'s answers.
  @Test func agreesWithVeraisonBlockSizes() {
    let documented: [(bits: Int, sizes: UInt64)] = [
      (44, 0x80_4020_1000), (43, 0x40_201000), (40, 0x4020_1000), (39, 0x4020_1000), (35, 0x4020_1000),
      (34, 0x20_1000), (33, 0x20_1000),
    ]
    for (bits, sizes) in documented {
      let walk = RTTWalk(ipaBits: bits)
      let ours = (walk.startLevel...3).reduce(UInt64(0)) { $0 | RTTWalk.mapSize($1) }
      #expect(ours == sizes, "\(bits) IPA bits")
    }
    let walk = RTTWalk(ipaBits: 35)
    #expect(RTTWalk.mapSize(walk.findMapLevel(0x4000_0000, 0x8000_0000)) == 0x4000_0000)
    #expect(RTTWalk.mapSize(walk.findMapLevel(0x40_0000, 0x80_0000)) == 0x20_0000)
    #expect(RTTWalk.mapSize(walk.findMapLevel(0x40_0000, 0x50_0000)) == 0x1000)
    #expect(RTTWalk.mapSize(walk.findMapLevel(0x1000, 0x2000)) == 0x1000)
  }

  /// Generation A order (INIT_RIPAS over all RAM, then DATA, then the REC), by hand.
  @Test func ripasBeforeData() throws {
    var launch = try SmallRealm.launch(sha512: false)
    launch.parameters.lpa2 = false
    var hand = HandRIM(flags: 0, s2sz: 33, bps: 5, wps: 3, sha512: false)
    for block in stride(from: SmallRealm.ramBase, to: SmallRealm.ramBase + SmallRealm.ramSize, by: 0x20_0000) {
      hand.ripas(base: block, top: block + 0x20_0000)
    }
    hand.data(ipa: SmallRealm.ramBase, granule: granule(0x11))
    hand.data(ipa: SmallRealm.ramBase + 0x1000, granule: granule(0x22))
    for index in 0..<16 {
      hand.data(ipa: SmallRealm.dtbAddress + UInt64(index) * 0x1000, granule: granule(0x40 + UInt8(index)))
    }
    hand.rec(pc: SmallRealm.ramBase, x0: SmallRealm.dtbAddress)
    #expect(try launch.measure(rules: .rmm1_0, ripasOrder: .beforeData).digest == hand.digest)
  }

  /// Nothing populated (generation A asks before populating): the largest blocks; with start
  /// level 2 that is 2 MiB.
  @Test func emptyRAMIsBlocks() {
    let result = entries(bits: 33, ram: 0x8000_0000..<0x9000_0000, populated: [])
    #expect(result.count == 128)
    #expect(result.allSatisfy { $0.count == 0x20_0000 && $0.lowerBound % 0x20_0000 == 0 })
  }

  /// A RAM end that is not 2 MiB aligned: the last partial block goes page by page.
  @Test func partialLastBlock() {
    let result = entries(bits: 33, ram: 0x8000_0000..<0x8040_3000, populated: [])
    #expect(result == [0x8000_0000..<0x8020_0000, 0x8020_0000..<0x8040_0000, 0x8040_0000..<0x8040_1000, 0x8040_1000..<0x8040_2000, 0x8040_2000..<0x8040_3000])
  }

  /// 7 GiB at 2 GiB: 35 IPA bits, start level 1. With the first page populated: 511 pages,
  /// then 511 2 MiB blocks up to 3 GiB, then 1 GiB blocks up to 9 GiB.
  @Test func gigabyteBlocks() {
    let result = entries(bits: 35, ram: 0x8000_0000..<0x2_4000_0000, populated: [0x8000_0000])
    var expected: [Range<UInt64>] = []
    for page in stride(from: UInt64(0x8000_1000), to: 0x8020_0000, by: 0x1000) { expected.append(page..<page + 0x1000) }
    for block in stride(from: UInt64(0x8020_0000), to: 0xc000_0000, by: 0x20_0000) { expected.append(block..<block + 0x20_0000) }
    for gib in stride(from: UInt64(0xc000_0000), to: 0x2_4000_0000, by: 0x4000_0000) { expected.append(gib..<gib + 0x4000_0000) }
    #expect(result.count == 511 + 511 + 6)
    #expect(result == expected)
  }

  /// Populated pages in the middle of a block: the block's other pages, one by one, around them.
  @Test func holesInABlock() {
    let result = entries(bits: 33, ram: 0x8000_0000..<0x8040_0000, populated: [0x8020_1000, 0x8020_3000])
    var expected: [Range<UInt64>] = [0x8000_0000..<0x8020_0000]
    for page in stride(from: UInt64(0x8020_0000), to: 0x8040_0000, by: 0x1000) where page != 0x8020_1000 && page != 0x8020_3000 {
      expected.append(page..<page + 0x1000)
    }
    #expect(result == expected)
  }
}
