import FirmwareCore

/// Builds a FAT32 volume image in memory from a set of directories and files.
/// Names that fit 8.3 in a single case are stored as short names (with the NT lower-case
/// flags); all others get VFAT long-name entries and a generated "NAME~N.EXT" short name.
struct FAT32Builder {
  struct File { var path: [String]; var contents: [UInt8] }
  private(set) var files: [File] = []
  private(set) var directories: [[String]] = []

  /// Adds a file at an absolute path ("/loader/loader.conf"); parent directories are created.
  mutating func addFile(_ path: String, contents: [UInt8]) {
    let components = path.split(separator: "/").map(String.init)
    for depth in 1..<max(1, components.count) {
      let dir = Array(components[0..<depth])
      if !directories.contains(dir) { directories.append(dir) }
    }
    files.append(File(path: components, contents: contents))
  }

  /// Total bytes of file data (for sizing the volume).
  var payloadBytes: Int { files.reduce(0) { $0 + $1.contents.count } }

  /// Sectors per cluster that keep the cluster count in FAT32's range for `sectors`.
  static func sectorsPerCluster(totalSectors: UInt64) -> UInt64 {
    var spc: UInt64 = 1
    while spc < 64 && totalSectors / (spc * 2) >= 65525 + 1024 { spc *= 2 }
    return spc
  }

  /// The volume image of `totalSectors` 512-byte sectors starting at disk LBA `hiddenSectors`.
  func build(totalSectors: UInt64, hiddenSectors: UInt64, volumeID: UInt32, label: String) throws(DiskImageError) -> [UInt8] {
    let spc = FAT32Builder.sectorsPerCluster(totalSectors: totalSectors)
    let reserved: UInt64 = 32
    // Smallest FAT that has an entry for every cluster the remaining space holds.
    var fatSectors = ((totalSectors / spc + 2) * 4 + 511) / 512 / 2
    var clusters = (totalSectors - reserved - 2 * fatSectors) / spc
    while fatSectors * 128 < clusters + 2 {
      fatSectors += 1
      clusters = (totalSectors - reserved - 2 * fatSectors) / spc
    }
    guard clusters >= 65525 else { throw .volumeTooSmall }
    let clusterBytes = Int(spc * 512)
    let dataStart = reserved + 2 * fatSectors
    var image = [UInt8](repeating: 0, count: Int(totalSectors) * 512)
    var fat = [UInt32](repeating: 0, count: Int(clusters) + 2)
    fat[0] = 0x0FFF_FFF8
    fat[1] = 0x0FFF_FFFF
    var nextCluster: UInt32 = 2

    func allocate(_ bytes: Int) throws(DiskImageError) -> UInt32 {
      let count = max(1, (bytes + clusterBytes - 1) / clusterBytes)
      guard Int(nextCluster) + count <= fat.count else { throw .volumeTooSmall }
      let first = nextCluster
      for i in 0..<count {
        let c = Int(first) + i
        fat[c] = i == count - 1 ? 0x0FFF_FFFF : UInt32(c + 1)
      }
      nextCluster += UInt32(count)
      return first
    }
    func offset(of cluster: UInt32) -> Int { Int(dataStart) * 512 + Int(cluster - 2) * clusterBytes }

    // Directories: root first, then in the order they were created; each gets its entries.
    let allDirs: [[String]] = [[]] + directories
    func children(of dir: [String]) -> (dirs: [[String]], files: [File]) {
      (directories.filter { $0.count == dir.count + 1 && Array($0.prefix(dir.count)) == dir },
       files.filter { $0.path.count == dir.count + 1 && Array($0.path.prefix(dir.count)) == dir })
    }
    // First pass: sizes and cluster allocation.
    var dirCluster: [[String]: UInt32] = [:]
    for dir in allDirs {
      let (ds, fs) = children(of: dir)
      var entries = dir.isEmpty ? 1 : 2  // label in root, "." and ".." elsewhere
      for name in ds.map({ $0.last! }) + fs.map({ $0.path.last! }) { entries += FAT32Builder.entryCount(name) }
      dirCluster[dir] = try allocate((entries + 1) * 32)
    }
    var fileCluster: [Int: UInt32] = [:]
    for (i, f) in files.enumerated() where !f.contents.isEmpty { fileCluster[i] = try allocate(f.contents.count) }

    // Second pass: write directory contents and file data.
    for dir in allDirs {
      let (ds, _) = children(of: dir)
      var raw: [UInt8] = []
      var usedShort: Set<[UInt8]> = []
      if dir.isEmpty {
        raw += FAT32Builder.shortEntry(FAT32Builder.padded(label.uppercased()), attr: 0x08, cluster: 0, size: 0, caseFlags: 0)
      } else {
        raw += FAT32Builder.shortEntry(Array(".          ".utf8), attr: 0x10, cluster: dirCluster[dir]!, size: 0, caseFlags: 0)
        let parent = dir.count == 1 ? 0 : dirCluster[Array(dir.dropLast())]!
        raw += FAT32Builder.shortEntry(Array("..         ".utf8), attr: 0x10, cluster: parent, size: 0, caseFlags: 0)
      }
      for d in ds {
        raw += FAT32Builder.entries(name: d.last!, attr: 0x10, cluster: dirCluster[d]!, size: 0, used: &usedShort)
      }
      for (i, f) in files.enumerated() where f.path.count == dir.count + 1 && Array(f.path.prefix(dir.count)) == dir {
        raw += FAT32Builder.entries(name: f.path.last!, attr: 0x20, cluster: fileCluster[i] ?? 0,
                                    size: UInt32(f.contents.count), used: &usedShort)
      }
      let at = offset(of: dirCluster[dir]!)
      image.replaceSubrange(at..<(at + raw.count), with: raw)
    }
    for (i, f) in files.enumerated() {
      guard let c = fileCluster[i] else { continue }
      let at = offset(of: c)
      image.replaceSubrange(at..<(at + f.contents.count), with: f.contents)
    }

    // Boot sector, FSInfo, backup boot sector.
    var boot = [UInt8](repeating: 0, count: 512)
    boot.replaceSubrange(0..<3, with: [0xEB, 0x58, 0x90])
    boot.replaceSubrange(3..<11, with: Array("REALMRUN".utf8))
    boot.storeLE(512, at: 11, width: 2)
    boot[13] = UInt8(spc)
    boot.storeLE(reserved, at: 14, width: 2)
    boot[16] = 2
    boot[21] = 0xF8
    boot.storeLE(32, at: 24, width: 2)
    boot.storeLE(64, at: 26, width: 2)
    boot.storeLE(hiddenSectors, at: 28, width: 4)
    boot.storeLE(totalSectors, at: 32, width: 4)
    boot.storeLE(fatSectors, at: 36, width: 4)
    boot.storeLE(2, at: 44, width: 4)
    boot.storeLE(1, at: 48, width: 2)
    boot.storeLE(6, at: 50, width: 2)
    boot[64] = 0x80
    boot[66] = 0x29
    boot.storeLE(UInt64(volumeID), at: 67, width: 4)
    boot.replaceSubrange(71..<82, with: FAT32Builder.padded(label.uppercased()))
    boot.replaceSubrange(82..<90, with: Array("FAT32   ".utf8))
    boot[510] = 0x55
    boot[511] = 0xAA
    var info = [UInt8](repeating: 0, count: 512)
    info.storeLE(0x4161_5252, at: 0, width: 4)
    info.storeLE(0x6141_7272, at: 484, width: 4)
    info.storeLE(UInt64(fat.count) - UInt64(nextCluster), at: 488, width: 4)
    info.storeLE(UInt64(nextCluster), at: 492, width: 4)
    info.storeLE(0xAA55_0000, at: 508, width: 4)
    image.replaceSubrange(0..<512, with: boot)
    image.replaceSubrange(512..<1024, with: info)
    image.replaceSubrange(6 * 512..<7 * 512, with: boot)
    image.replaceSubrange(7 * 512..<8 * 512, with: info)

    var fatBytes: [UInt8] = []
    fatBytes.reserveCapacity(fat.count * 4)
    for v in fat { fatBytes.appendLE(UInt64(v), width: 4) }
    for copy in 0..<2 {
      let at = Int(reserved + UInt64(copy) * fatSectors) * 512
      image.replaceSubrange(at..<(at + fatBytes.count), with: fatBytes)
    }
    return image
  }

  /// Directory slots needed for `name` (1 short entry plus long-name entries when needed).
  static func entryCount(_ name: String) -> Int {
    shortForm(name) != nil ? 1 : 1 + (name.utf16.count + 12) / 13
  }

  static func padded(_ s: String) -> [UInt8] {
    let bytes = Array(s.utf8.prefix(11))
    return bytes + [UInt8](repeating: 32, count: 11 - bytes.count)
  }

  /// The 11-byte 8.3 name and NT case flags when `name` can be stored without a long name.
  static func shortForm(_ name: String) -> ([UInt8], UInt8)? {
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count <= 2, let base = parts.first, !base.isEmpty, base.count <= 8 else { return nil }
    let ext = parts.count == 2 ? parts[1] : ""
    guard ext.count <= 3, parts.count == 1 || !ext.isEmpty else { return nil }
    let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz_-~!#$%&'(){}^@`".utf8)
    guard (Array(base.utf8) + Array(ext.utf8)).allSatisfy({ allowed.contains($0) }) else { return nil }
    func caseFlag(_ s: Substring, _ bit: UInt8) -> UInt8? {
      let hasLower = s.contains { $0.isLowercase }, hasUpper = s.contains { $0.isUppercase }
      if hasLower && hasUpper { return nil }
      return hasLower ? bit : 0
    }
    guard let b = caseFlag(base, 0x08), let e = caseFlag(ext, 0x10) else { return nil }
    let short = Array(base.uppercased().utf8) + [UInt8](repeating: 32, count: 8 - base.count)
      + Array(ext.uppercased().utf8) + [UInt8](repeating: 32, count: 3 - ext.count)
    return (short, b | e)
  }

  static func shortEntry(_ name: [UInt8], attr: UInt8, cluster: UInt32, size: UInt32, caseFlags: UInt8) -> [UInt8] {
    var e = [UInt8](repeating: 0, count: 32)
    e.replaceSubrange(0..<11, with: name)
    e[11] = attr
    e[12] = caseFlags
    let date: UInt64 = (44 << 9) | (1 << 5) | 1  // 2024-01-01
    e.storeLE(date, at: 16, width: 2)  // created
    e.storeLE(date, at: 18, width: 2)  // accessed
    e.storeLE(UInt64(cluster >> 16), at: 20, width: 2)
    e.storeLE(date, at: 24, width: 2)  // modified
    e.storeLE(UInt64(cluster & 0xFFFF), at: 26, width: 2)
    e.storeLE(UInt64(size), at: 28, width: 4)
    return e
  }

  /// Long-name entries (if needed) followed by the short entry.
  static func entries(name: String, attr: UInt8, cluster: UInt32, size: UInt32, used: inout Set<[UInt8]>) -> [UInt8] {
    if let (short, flags) = shortForm(name), !used.contains(short) {
      used.insert(short)
      return shortEntry(short, attr: attr, cluster: cluster, size: size, caseFlags: flags)
    }
    // Generated short name: first 6 valid characters + "~N", extension up to 3.
    let upper = name.uppercased()
    let dot = upper.lastIndex(of: ".")
    let stem = dot.map { String(upper[..<$0]) } ?? upper
    let ext = dot.map { String(upper[upper.index(after: $0)...]) } ?? ""
    func clean(_ s: String, _ n: Int) -> [UInt8] {
      Array(s.utf8.filter { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }.prefix(n))
    }
    var short: [UInt8] = []
    for n in 1...999_999 {
      let tail = Array("~\(n)".utf8)
      let base = clean(stem, 8 - tail.count) + tail
      short = base + [UInt8](repeating: 32, count: 8 - base.count)
      let e = clean(ext, 3)
      short += e + [UInt8](repeating: 32, count: 3 - e.count)
      if !used.contains(short) { break }
    }
    used.insert(short)
    var sum: UInt8 = 0
    for b in short { sum = ((sum & 1) << 7) &+ (sum >> 1) &+ b }
    var units = Array(name.utf16)
    let count = (units.count + 12) / 13
    if units.count % 13 != 0 { units.append(0) }
    while units.count < count * 13 { units.append(0xFFFF) }
    var out: [UInt8] = []
    for seq in stride(from: count, through: 1, by: -1) {
      var e = [UInt8](repeating: 0, count: 32)
      e[0] = UInt8(seq) | (seq == count ? 0x40 : 0)
      e[11] = 0x0F
      e[13] = sum
      let chunk = Array(units[(seq - 1) * 13..<seq * 13])
      for (i, p) in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30].enumerated() {
        e.storeLE(UInt64(chunk[i]), at: p, width: 2)
      }
      out += e
    }
    return out + shortEntry(short, attr: attr, cluster: cluster, size: size, caseFlags: 0)
  }
}
