/// Which measurement rules the host's RMM follows, each with the order its host kernels issue the
/// measured commands in.
public enum RIMRules: String, Sendable, CaseIterable, Codable {
  /// RMM spec 1.0-rel0 (TF-RMM 0.8.0): `RMI_RTT_INIT_RIPAS` is measured, one descriptor per RTT
  /// entry (DEN0137 B4.3.18.4). With a series v12 kernel (RMI, generation B) the order is
  /// REALM_CREATE, DATA_CREATE per populated granule, REC_CREATE of vCPU 0, then INIT_RIPAS over
  /// the unpopulated pages of RAM, all at the first `KVM_RUN` after the data.
  case rmm1_0 = "rmm-1.0"
  /// RMM spec 2.0-bet0 as TF-RMM 0.9.0 implements it (series v13+ kernels): RIPAS initialisation
  /// is not measured; REALM_CREATE, DATA_CREATE per populated granule, REC_CREATE of vCPU 0.
  case rmm2_0 = "rmm-2.0"
}

/// The order a host kernel issues RMM 1.0's measured commands in.
public enum RIPASOrder: String, Sendable, Codable {
  /// Series v12 (generation B): INIT_RIPAS at the first `KVM_RUN`, after the REC, over the
  /// pages populate left alone (the kernel steps over populated ones).
  case afterREC
  /// Generation A (series v5–v11): the VMM asks for INIT_RIPAS over all RAM before it populates,
  /// so every entry is a block of the largest size that fits. Not checked on a real host.
  case beforeData
}

/// The initial contents of a populated region, read in place.
public protocol RegionContents: Sendable {
  /// Calls `body` with the bytes.
  func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
  /// Says the bytes in `range` have been used and will not be needed again soon, so that their
  /// memory may go (a mapped file's pages leave the process; the page cache keeps them).
  func done(with range: Range<Int>)
}

extension RegionContents {
  public func done(with range: Range<Int>) {}
}

extension Array: RegionContents where Element == UInt8 {
  public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    // withUnsafeBytes cannot pass a typed error through: carry it out by hand.
    var outcome: Result<R, E>!
    withUnsafeBytes { buffer in outcome = Result { () throws(E) in try body(buffer) } }
    return try outcome.get()
  }
}

/// Everything about a Realm's construction that its RIM depends on.
public struct RealmLaunch: Sendable, Equatable {
  /// Initial contents populated with `RMI_MEASURE_CONTENT`.
  public struct Region: Sendable, Equatable {
    /// Guest address of the first byte: a 4 KiB granule.
    public var address: UInt64
    /// Whole 4 KiB granules: zeros around the contents.
    public var size: Int
    /// Where the contents start within the region.
    public var contentOffset: Int
    /// The bytes at `contentOffset`, read where they are (a mapped file is never copied whole).
    public var contents: any RegionContents

    public init(address: UInt64, size: Int, contentOffset: Int = 0, contents: any RegionContents) {
      self.address = address
      self.size = size
      self.contentOffset = contentOffset
      self.contents = contents
    }

    /// A region of exactly `bytes`.
    public init(address: UInt64, bytes: [UInt8]) {
      self.init(address: address, size: bytes.count, contents: bytes)
    }

    /// Hands `body` each 4 KiB granule of the region in order, with its guest address: the
    /// contents that fall in it, zeros elsewhere, valid only during the call. The contents are
    /// handed back (``RegionContents/done(with:)``) about a MiB at a time as they are used.
    func forEachGranule(_ body: (UInt64, ArraySlice<UInt8>) throws(RIMError) -> Void) throws(RIMError) {
      let granuleSize = Int(RealmLaunch.granule)
      var granule = [UInt8](repeating: 0, count: granuleSize)
      try contents.withBytes { (contents) throws(RIMError) in
        var released = contentOffset  // the contents used and handed back, up to here
        for offset in stride(from: 0, to: size, by: granuleSize) {
          let start = Swift.max(offset, contentOffset), end = Swift.min(offset + granuleSize, contentOffset + contents.count)
          granule.withUnsafeMutableBytes { target in
            target.initializeMemory(as: UInt8.self, repeating: 0)
            if start < end {
              UnsafeMutableRawBufferPointer(rebasing: target[(start - offset)..<(end - offset)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: contents[(start - contentOffset)..<(end - contentOffset)]))
            }
          }
          try body(address + UInt64(offset), granule[...])
          if end - released >= RealmLaunch.releaseStep || (end == contentOffset + contents.count && end > released) {
            self.contents.done(with: (released - contentOffset)..<(end - contentOffset))
            released = end
          }
        }
      }
    }

    public static func == (a: Region, b: Region) -> Bool {
      guard a.address == b.address, a.size == b.size, a.contentOffset == b.contentOffset else { return false }
      return a.contents.withBytes { x in b.contents.withBytes { y in x.elementsEqual(y) } }
    }
  }

  public var parameters: RealmParameters
  /// The protected RAM (the guest_memfd memslot): INIT_RIPAS covers it under RMM 1.0.
  public var ram: Range<UInt64>
  /// The populated regions in the order the VMM populates them (ascending addresses).
  public var regions: [Region]
  /// vCPU 0, the only runnable REC. Other vCPUs' RECs are not runnable and not measured.
  public var bootCPU: RECParameters

  public init(parameters: RealmParameters, ram: Range<UInt64>, regions: [Region], bootCPU: RECParameters) {
    self.parameters = parameters
    self.ram = ram
    self.regions = regions
    self.bootCPU = bootCPU
  }

  public static let granule: UInt64 = 4096
  /// How much of a region's contents is hashed before it is handed back (``RegionContents/done(with:)``).
  static let releaseStep = 1 << 20

  /// Hands `body` the measured commands in the order the host issues them, one at a time: a
  /// granule's contents are valid only during its call, so a launch of any size is measured in
  /// constant memory.
  public func forEachOperation(
    rules: RIMRules, ripasOrder: RIPASOrder = .afterREC, _ body: (MeasuredOperation) throws(RIMError) -> Void
  ) throws(RIMError) {
    try validate()
    let ripas = ripasEntries(rules: rules, ripasOrder: ripasOrder).map { MeasuredOperation.ripas(base: $0.lowerBound, top: $0.upperBound) }
    if ripasOrder == .beforeData { for operation in ripas { try body(operation) } }
    for region in regions {
      try region.forEachGranule { (ipa, granule) throws(RIMError) in try body(.data(ipa: ipa, contents: granule)) }
    }
    try body(.rec(bootCPU))
    if ripasOrder == .afterREC { for operation in ripas { try body(operation) } }
  }

  /// The RTT entries `RMI_RTT_INIT_RIPAS` measures, in order: none under RMM 2.0; under RMM 1.0
  /// over all RAM, stepping over the granules populated before it when it comes after the REC.
  func ripasEntries(rules: RIMRules, ripasOrder: RIPASOrder) -> [Range<UInt64>] {
    guard rules == .rmm1_0 else { return [] }
    var populated = Set<UInt64>()
    if ripasOrder == .afterREC {
      for region in regions {
        for offset in stride(from: 0, to: region.size, by: Int(Self.granule)) { populated.insert(region.address + UInt64(offset)) }
      }
    }
    return RTTWalk(ipaBits: Int(parameters.ipaBits)).initRIPASEntries(over: ram, populated: populated)
  }

  /// The RIM the RMM reports once the Realm is built (`RSI_MEASUREMENT_READ(0)`).
  public func measure(rules: RIMRules, ripasOrder: RIPASOrder = .afterREC) throws(RIMError) -> RealmInitialMeasurement {
    var rim = RealmInitialMeasurement(parameters: parameters)
    try forEachOperation(rules: rules, ripasOrder: ripasOrder) { (operation) throws(RIMError) in try rim.extend(operation) }
    return rim
  }

  private func validate() throws(RIMError) {
    let bits = Int(parameters.ipaBits)
    guard (32...52).contains(bits) else { throw .badIPAWidth(bits) }
    let protectedTop: UInt64 = 1 << UInt64(bits - 1)
    guard ram.lowerBound % Self.granule == 0, ram.upperBound % Self.granule == 0, !ram.isEmpty,
      ram.upperBound <= protectedTop
    else { throw .badRAM(base: ram.lowerBound, size: UInt64(ram.count)) }
    var end = ram.lowerBound
    for region in regions {
      guard region.address % Self.granule == 0, region.size % Int(Self.granule) == 0 else {
        throw .unalignedData(address: region.address, size: region.size)
      }
      let contentsEnd = region.contents.withBytes { region.contentOffset + $0.count }
      guard region.contentOffset >= 0, contentsEnd <= region.size else {
        throw .contentsOutsideRegion(address: region.address, size: region.size)
      }
      guard region.address >= end else { throw .overlappingData(address: region.address) }
      end = region.address + UInt64(region.size)
      guard end <= ram.upperBound else { throw .dataOutsideRAM(address: region.address) }
    }
  }
}

/// How Linux's CCA host (series v12, `ripas_change()`) and TF-RMM 0.8.0
/// (`smc_rtt_init_ripas()`) split an INIT_RIPAS range into the RTT entries the RMM measures.
///
/// The RMM walks to the deepest RTT that exists for `base` and initialises the entries of that
/// table from `base` on, as long as each is aligned, fits below `top` and is unassigned; each is
/// one RIPAS descriptor of its level's size. When it cannot start (the entry is larger than the
/// range, or `base` is inside one), it returns `RMI_ERROR_RTT` with the level, and the kernel
/// creates tables down to `find_map_level()` (the largest aligned block that fits) and retries.
/// On an entry that already holds DATA the error comes at level 3: the kernel skips that page,
/// unmeasured. Populating created level-3 tables over every populated granule beforehand, so
/// the 2 MiB blocks around populated data are measured page by page.
struct RTTWalk {
  let ipaBits: Int
  /// The starting level, as the kernel's `get_start_level()` computes it for 4 KiB granules.
  var startLevel: Int { 4 - (ipaBits - 8) / 9 }

  /// The size of one entry of a table at `level` (level 3: 4 KiB, 2: 2 MiB, 1: 1 GiB).
  static func mapSize(_ level: Int) -> UInt64 { 1 << UInt64(12 + 9 * (3 - level)) }

  /// The RTTs that exist below the root, by (level, index of the entry above that they replace).
  private struct Table: Hashable {
    let level: Int
    let index: UInt64
    init(level: Int, covering ipa: UInt64) {
      self.level = level
      index = ipa / RTTWalk.mapSize(level - 1)
    }
  }

  /// Linux's `find_map_level()`: the largest block (lowest level) aligned at `start` that fits
  /// below `end`, no higher than the starting level.
  func findMapLevel(_ start: UInt64, _ end: UInt64) -> Int {
    var level = 3
    while level > startLevel {
      let size = Self.mapSize(level - 1)
      guard start % size == 0, start + size <= end else { break }
      level -= 1
    }
    return level
  }

  /// The entries INIT_RIPAS measures over `range`, in order, given the granules populated before.
  func initRIPASEntries(over range: Range<UInt64>, populated: Set<UInt64>) -> [Range<UInt64>] {
    var tables = Set<Table>()
    for ipa in populated where startLevel < 3 {
      for level in (startLevel + 1)...3 { tables.insert(Table(level: level, covering: ipa)) }
    }
    func deepestLevel(_ ipa: UInt64) -> Int {
      var level = startLevel
      while level < 3, tables.contains(Table(level: level + 1, covering: ipa)) { level += 1 }
      return level
    }
    var entries: [Range<UInt64>] = []
    var ipa = range.lowerBound
    let end = range.upperBound
    while ipa < end {
      let level = deepestLevel(ipa)
      let size = Self.mapSize(level)
      if ipa % size == 0, ipa + size <= end, !(level == 3 && populated.contains(ipa)) {
        entries.append(ipa..<ipa + size)
        ipa += size
        continue
      }
      // RMI_ERROR_RTT at `level`.
      let mapLevel = findMapLevel(ipa, end)
      if level >= mapLevel {
        ipa += RealmLaunch.granule  // the kernel's skip over an already-populated page
      } else {
        for created in (level + 1)...mapLevel { tables.insert(Table(level: created, covering: ipa)) }
      }
    }
    return entries
  }
}
