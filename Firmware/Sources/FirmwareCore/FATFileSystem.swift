/// Why a FAT volume, directory or file could not be read.
public enum FATError: Error, Equatable {
  case device(BlockDeviceError)
  case notFAT
  case badGeometry
  /// A cluster number outside the volume (a directory entry's first cluster or a FAT link).
  case badCluster(UInt32)
  /// The chain reaches this cluster a second time.
  case clusterLoop(UInt32)
  /// The chain ends after `found` clusters; the file's size needs `expected`.
  case chainTooShort(expected: Int, found: Int)
  /// The chain goes on past the `limit` clusters its file's size (or a directory's maximum) allows.
  case chainTooLong(limit: Int)
  case notFound
  case notADirectory
  case isADirectory
  case fileTooLarge(UInt32)
}

/// A directory entry (file or subdirectory).
public struct FATDirectoryEntry: Equatable {
  /// The long file name when present and valid, else the 8.3 name ("NAME.EXT", case flags applied); UTF-8.
  public var name: [UInt8]
  /// The 8.3 name as "NAME.EXT".
  public var shortName: [UInt8]
  public var isDirectory: Bool
  public var firstCluster: UInt32
  public var size: UInt32
}

/// The FAT variant, chosen by cluster count as the FAT specification says.
public enum FATKind: Equatable { case fat12, fat16, fat32 }

/// A read-only FAT12/16/32 volume on a block device.
public struct FATVolume<Device: BlockDevice> {
  public var device: Device
  public let kind: FATKind
  let sectorScale: UInt64  // device sectors per FAT sector
  let bytesPerSector: UInt64
  let sectorsPerCluster: UInt64
  let fatStart: UInt64  // in FAT sectors
  let rootDirStart: UInt64
  let rootDirSectors: UInt64
  let dataStart: UInt64
  /// Number of data clusters (valid cluster numbers are 2 ... clusterCount + 1).
  public let clusterCount: UInt32
  let rootCluster: UInt32
  var cachedFATSector: UInt64 = UInt64.max
  var cachedFAT: [UInt8] = []

  /// Bytes per cluster.
  public var clusterSize: Int { Int(bytesPerSector * sectorsPerCluster) }

  /// Reads and checks the boot sector (BPB).
  public init(device: Device) throws(FATError) {
    self.device = device
    let boot: [UInt8]
    do throws(BlockDeviceError) { boot = try self.device.readSectors(lba: 0, count: 1) } catch { throw .device(error) }
    guard boot.le16(at: 510) == 0xAA55,
          let bps16 = boot.le16(at: 11), let spc8 = boot.byte(at: 13), let reserved16 = boot.le16(at: 14),
          let fats8 = boot.byte(at: 16), let rootEntries16 = boot.le16(at: 17), let total16 = boot.le16(at: 19),
          let fat16 = boot.le16(at: 22), let total32 = boot.le32(at: 32)
    else { throw .notFAT }
    let bps = UInt64(bps16), spc = UInt64(spc8)
    guard [512, 1024, 2048, 4096].contains(bps), spc > 0, spc <= 128, spc & (spc - 1) == 0,
          reserved16 > 0, fats8 > 0, fats8 <= 4
    else { throw .notFAT }
    let fatSectors: UInt64
    if fat16 != 0 {
      fatSectors = UInt64(fat16)
    } else {
      guard let f32 = boot.le32(at: 36), f32 != 0 else { throw .notFAT }
      fatSectors = UInt64(f32)
    }
    let total = total16 != 0 ? UInt64(total16) : UInt64(total32)
    let rootSectors = (UInt64(rootEntries16) * 32 + bps - 1) / bps
    let dataStart = UInt64(reserved16) + UInt64(fats8) * fatSectors + rootSectors
    guard total > dataStart else { throw .badGeometry }
    let scale = bps / 512
    guard total <= device.sectorCount / scale else { throw .badGeometry }
    let clusters = (total - dataStart) / spc
    guard clusters > 0, clusters < 0x0FFF_FFF5 else { throw .badGeometry }
    let kind: FATKind = clusters < 4085 ? .fat12 : (clusters < 65525 ? .fat16 : .fat32)
    // The FAT must be able to hold an entry for every cluster.
    let fatBits: UInt64 = kind == .fat12 ? 12 : (kind == .fat16 ? 16 : 32)
    guard (clusters + 2) * fatBits <= fatSectors * bps * 8 else { throw .badGeometry }
    var root: UInt32 = 0
    if kind == .fat32 {
      guard let rc = boot.le32(at: 44), rc >= 2, UInt64(rc) < clusters + 2 else { throw .badGeometry }
      root = rc
    } else {
      guard rootEntries16 > 0 else { throw .badGeometry }
    }
    self.kind = kind
    sectorScale = scale
    bytesPerSector = bps
    sectorsPerCluster = spc
    fatStart = UInt64(reserved16)
    rootDirStart = UInt64(reserved16) + UInt64(fats8) * fatSectors
    rootDirSectors = rootSectors
    self.dataStart = dataStart
    clusterCount = UInt32(clusters)
    rootCluster = root
  }

  mutating func readFATSectors(_ sector: UInt64, count: Int) throws(FATError) -> [UInt8] {
    do throws(BlockDeviceError) {
      return try device.readSectors(lba: sector * sectorScale, count: count * Int(sectorScale))
    } catch { throw .device(error) }
  }

  mutating func fatByte(_ offset: UInt64) throws(FATError) -> UInt8 {
    let sector = fatStart + offset / bytesPerSector
    if sector != cachedFATSector {
      cachedFAT = try readFATSectors(sector, count: 1)
      cachedFATSector = sector
    }
    guard let b = cachedFAT.byte(at: Int(offset % bytesPerSector)) else { throw .badGeometry }
    return b
  }

  /// True for a data cluster's number (2 ... clusterCount + 1).
  public func isCluster(_ cluster: UInt32) -> Bool { cluster >= 2 && cluster <= clusterCount + 1 }

  /// The cluster after `cluster` in its chain, or nil at end of chain.
  public mutating func nextCluster(_ cluster: UInt32) throws(FATError) -> UInt32? {
    guard isCluster(cluster) else { throw .badCluster(cluster) }
    let c = UInt64(cluster)
    let value: UInt32
    let endMarker: UInt32
    switch kind {
    case .fat12:
      let off = c + c / 2
      let raw = UInt32(try fatByte(off)) | UInt32(try fatByte(off + 1)) << 8
      value = cluster & 1 == 1 ? raw >> 4 : raw & 0xFFF
      endMarker = 0xFF8
    case .fat16:
      value = UInt32(try fatByte(c * 2)) | UInt32(try fatByte(c * 2 + 1)) << 8
      endMarker = 0xFFF8
    case .fat32:
      var v: UInt32 = 0
      for i in 0..<4 { v |= UInt32(try fatByte(c * 4 + UInt64(i))) << (8 * UInt32(i)) }
      value = v & 0x0FFF_FFFF
      endMarker = 0x0FFF_FFF8
    }
    if value >= endMarker { return nil }
    guard isCluster(value) else { throw .badCluster(value) }
    return value
  }

  func clusterSector(_ cluster: UInt32) -> UInt64 {
    dataStart + UInt64(cluster - 2) * sectorsPerCluster
  }

  /// Entries of a directory (the root when `directory` is nil).
  public mutating func entries(of directory: FATDirectoryEntry?) throws(FATError) -> [FATDirectoryEntry] {
    var raw: [UInt8] = []
    if let directory {
      guard directory.isDirectory else { throw .notADirectory }
      // A directory holds at most 65536 entries (2 MiB).
      let maxClusters = Swift.max(1, Swift.min(Int(clusterCount), (2 << 20) / clusterSize))
      var chain = try FATClusterChain(first: directory.firstCluster, length: .atMost(maxClusters), in: self)
      while let run = try chain.nextRun(in: &self, maxClusters: maxClusters) {
        raw += try readFATSectors(clusterSector(run.first), count: run.count * Int(sectorsPerCluster))
      }
    } else if kind == .fat32 {
      return try entries(of: FATDirectoryEntry(name: [], shortName: [], isDirectory: true, firstCluster: rootCluster, size: 0))
    } else {
      raw = try readFATSectors(rootDirStart, count: Int(rootDirSectors))
    }
    return FATVolume.parseDirectory(raw)
  }

  /// Decodes raw directory entries (32 bytes each) with VFAT long names.
  public static func parseDirectory(_ raw: [UInt8]) -> [FATDirectoryEntry] {
    var result: [FATDirectoryEntry] = []
    var longName: [UInt16] = []
    var longChecksum: UInt8 = 0
    var expectedSequence = 0
    var off = 0
    while off + 32 <= raw.count {
      let e = Array(raw[off..<(off + 32)])
      off += 32
      let first = e[0]
      if first == 0 { break }
      if first == 0xE5 { longName = []; expectedSequence = 0; continue }
      let attr = e[11]
      if attr & 0x3F == 0x0F {
        let seq = Int(first & 0x1F)
        if first & 0x40 != 0 {
          longName = [UInt16](repeating: 0xFFFF, count: seq * 13)
          longChecksum = e[13]
          expectedSequence = seq
        }
        guard seq >= 1, seq == expectedSequence, e[13] == longChecksum, seq * 13 <= longName.count else {
          longName = []; expectedSequence = 0; continue
        }
        var chars: [UInt16] = []
        for p in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30] { chars.append(UInt16(e[p]) | UInt16(e[p + 1]) << 8) }
        for (i, ch) in chars.enumerated() { longName[(seq - 1) * 13 + i] = ch }
        expectedSequence = seq - 1
        continue
      }
      defer { longName = []; expectedSequence = 0 }
      if attr & 0x08 != 0 { continue }  // volume label
      var base = Array(e[0..<8])
      if base[0] == 0x05 { base[0] = 0xE5 }
      while base.last == 32 { base.removeLast() }
      var ext = Array(e[8..<11])
      while ext.last == 32 { ext.removeLast() }
      if base == [46] || base == [46, 46] { continue }
      let shortName = ext.isEmpty ? base : base + [46] + ext
      var display = (e[12] & 0x08 != 0 ? ByteString.lowercased(base) : base)
      if !ext.isEmpty { display += [46] + (e[12] & 0x10 != 0 ? ByteString.lowercased(ext) : ext) }
      var sum: UInt8 = 0
      for b in e[0..<11] { sum = ((sum & 1) << 7) &+ (sum >> 1) &+ b }
      if !longName.isEmpty && expectedSequence == 0 && sum == longChecksum {
        var units: [UInt16] = []
        for u in longName { if u == 0 || u == 0xFFFF { break }; units.append(u) }
        display = FATVolume.utf8(fromUTF16: units)
      }
      let cluster = UInt32(e[26]) | UInt32(e[27]) << 8 | UInt32(e[20]) << 16 | UInt32(e[21]) << 24
      let size = UInt32(e[28]) | UInt32(e[29]) << 8 | UInt32(e[30]) << 16 | UInt32(e[31]) << 24
      result.append(FATDirectoryEntry(name: display, shortName: shortName, isDirectory: attr & 0x10 != 0,
                                      firstCluster: cluster, size: size))
    }
    return result
  }

  /// UTF-16 → UTF-8 (unpaired surrogates become U+FFFD).
  static func utf8(fromUTF16 units: [UInt16]) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while i < units.count {
      var scalar = UInt32(units[i])
      i += 1
      if scalar >= 0xD800 && scalar < 0xDC00, i < units.count, units[i] >= 0xDC00, units[i] < 0xE000 {
        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (UInt32(units[i]) - 0xDC00)
        i += 1
      } else if scalar >= 0xD800 && scalar < 0xE000 {
        scalar = 0xFFFD
      }
      if scalar < 0x80 {
        out.append(UInt8(scalar))
      } else if scalar < 0x800 {
        out += [UInt8(0xC0 | scalar >> 6), UInt8(0x80 | scalar & 0x3F)]
      } else if scalar < 0x10000 {
        out += [UInt8(0xE0 | scalar >> 12), UInt8(0x80 | (scalar >> 6) & 0x3F), UInt8(0x80 | scalar & 0x3F)]
      } else {
        out += [UInt8(0xF0 | scalar >> 18), UInt8(0x80 | (scalar >> 12) & 0x3F),
                UInt8(0x80 | (scalar >> 6) & 0x3F), UInt8(0x80 | scalar & 0x3F)]
      }
    }
    return out
  }

  /// Finds `name` (ASCII case-insensitive, long or short name) in a directory.
  public mutating func find(_ name: [UInt8], in directory: FATDirectoryEntry?) throws(FATError) -> FATDirectoryEntry {
    let want = ByteString.lowercased(name)
    for e in try entries(of: directory)
    where ByteString.lowercased(e.name) == want || ByteString.lowercased(e.shortName) == want {
      return e
    }
    throw .notFound
  }

  /// Looks up a "/"-separated path from the root ("/loader/entries/a.conf").
  public mutating func lookup(_ path: [UInt8]) throws(FATError) -> FATDirectoryEntry {
    var current: FATDirectoryEntry? = nil
    for component in path.split(separator: 47) where !component.isEmpty {
      if let c = current, !c.isDirectory { throw .notADirectory }
      current = try find(Array(component), in: current)
    }
    guard let result = current else { throw .isADirectory }
    return result
  }

  /// Reads a whole file into a new array; `limit` guards against huge files.
  public mutating func readFile(_ entry: FATDirectoryEntry, limit: Int = 1 << 20) throws(FATError) -> [UInt8] {
    guard !entry.isDirectory else { throw .isADirectory }
    guard Int(entry.size) <= limit else { throw .fileTooLarge(entry.size) }
    var bytes = [UInt8](repeating: 0, count: Int(entry.size))
    var failure: FATError? = nil
    bytes.withUnsafeMutableBytes { buffer in
      do throws(FATError) { try readFile(entry, into: buffer) } catch { failure = error }
    }
    if let failure { throw failure }
    return bytes
  }

  /// The start of a file: the bytes of its first cluster, at most `entry.size` (a header to check
  /// before the whole file is read; its chain is checked then, by ``readFile(_:into:maxRun:)``).
  public mutating func readFirstCluster(of entry: FATDirectoryEntry) throws(FATError) -> [UInt8] {
    guard !entry.isDirectory else { throw .isADirectory }
    if entry.size == 0 { return [] }
    guard isCluster(entry.firstCluster) else { throw .badCluster(entry.firstCluster) }
    let bytes = try readFATSectors(clusterSector(entry.firstCluster), count: Int(sectorsPerCluster))
    return Array(bytes.prefix(Int(entry.size)))
  }

  /// Reads a file's `entry.size` bytes into `buffer` (which must be at least that large),
  /// reading runs of consecutive clusters in single device requests of up to `maxRun` bytes.
  public mutating func readFile(_ entry: FATDirectoryEntry, into buffer: UnsafeMutableRawBufferPointer,
                                maxRun: Int = 4 << 20) throws(FATError) {
    guard !entry.isDirectory else { throw .isADirectory }
    let size = Int(entry.size)
    guard size <= buffer.count else { throw .fileTooLarge(entry.size) }
    if size == 0 { return }
    guard let base = buffer.baseAddress else { throw .fileTooLarge(entry.size) }
    let csize = clusterSize
    let needed = (size + csize - 1) / csize
    var chain = try FATClusterChain(first: entry.firstCluster, length: .exactly(needed), in: self)
    var done = 0  // clusters read
    while let run = try chain.nextRun(in: &self, maxClusters: Swift.max(1, maxRun / csize)) {
      let bytes = Swift.min(run.count * csize, size - done * csize)
      let wholeClusters = bytes / csize
      let dest = base + done * csize
      if wholeClusters > 0 {
        do throws(BlockDeviceError) {
          try device.read(lba: clusterSector(run.first) * sectorScale,
                          into: UnsafeMutableRawBufferPointer(start: dest, count: wholeClusters * csize))
        } catch { throw .device(error) }
      }
      let tail = bytes - wholeClusters * csize
      if tail > 0 {  // the file's partial last cluster
        let last = try readFATSectors(clusterSector(run.first + UInt32(wholeClusters)), count: Int(sectorsPerCluster))
        last.withUnsafeBytes { src in
          if let s = src.baseAddress { (dest + wholeClusters * csize).copyMemory(from: s, byteCount: tail) }
        }
      }
      done += run.count
    }
  }
}

/// One walk along a cluster chain, handed out in runs of consecutive clusters (one device request
/// each). The walk is the only way FATVolume follows a chain, for files and directories alike, and
/// it checks every link: each cluster number is in range, no cluster comes twice, and the chain
/// is as long as its file's size needs (or at most as long as a directory may be).
///
/// Loops are found with Brent's cycle detection: one remembered cluster and two counters, however
/// long the chain, so a hostile FAT costs neither memory nor more than a few extra steps; the
/// length limit bounds the walk in any case.
public struct FATClusterChain {
  /// How long the chain must be, in clusters.
  public enum Length: Equatable {
    /// A file's chain: exactly ceil(size / cluster size) clusters.
    case exactly(Int)
    /// A directory's chain: its size is not recorded, only bounded.
    case atMost(Int)
  }

  public let length: Length
  /// Clusters handed out so far.
  public private(set) var count = 0
  /// The first cluster of the next run; nil once the chain has ended.
  private var pending: UInt32?
  // Brent: the cluster to compare each new one with, moved forward after `power` steps, then
  // after twice as many, so that it lands inside any loop and is met again within one turn.
  private var checkpoint: UInt32
  private var power = 1
  private var steps = 0

  /// Starts a walk at `first`, which must be a cluster of `volume`.
  public init<D: BlockDevice>(first: UInt32, length: Length, in volume: FATVolume<D>) throws(FATError) {
    guard volume.isCluster(first) else { throw .badCluster(first) }
    self.length = length
    pending = first
    checkpoint = first
  }

  var limit: Int {
    switch length {
    case .exactly(let n), .atMost(let n): return n
    }
  }

  /// The next run of up to `maxClusters` consecutive clusters, or nil when the chain has ended
  /// where it should. Throws as soon as a link is out of range, a cluster comes twice, or the
  /// chain turns out too short or too long.
  public mutating func nextRun<D: BlockDevice>(in volume: inout FATVolume<D>, maxClusters: Int)
    throws(FATError) -> (first: UInt32, count: Int)?
  {
    guard let first = pending else { return nil }
    var last = first
    var run = 1
    count += 1
    while true {
      guard let next = try volume.nextCluster(last) else {
        pending = nil
        if case .exactly(let n) = length, count < n { throw .chainTooShort(expected: n, found: count) }
        break
      }
      try check(next)
      guard count < limit else { throw .chainTooLong(limit: limit) }
      if next == last + 1 && run < maxClusters {
        last = next
        run += 1
        count += 1
      } else {
        pending = next
        break
      }
    }
    return (first, run)
  }

  /// Brent's step: `cluster` is the next one in the chain.
  private mutating func check(_ cluster: UInt32) throws(FATError) {
    if cluster == checkpoint { throw .clusterLoop(cluster) }
    steps += 1
    if steps == power {
      checkpoint = cluster
      power *= 2
      steps = 0
    }
  }
}
