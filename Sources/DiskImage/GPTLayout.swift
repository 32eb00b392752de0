import FirmwareCore

/// A partition to describe in the GPT.
struct GPTEntry {
  var type: [UInt8]
  var unique: [UInt8]
  var firstLBA: UInt64
  var lastLBA: UInt64
  var name: String
}

/// Protective MBR plus primary and backup GPT headers and partition arrays (128 entries of 128 bytes).
enum GPTWriter {
  static let entryCount = 128
  static let entrySize = 128
  /// Sectors taken by the partition array.
  static let arraySectors: UInt64 = UInt64(entryCount * entrySize / 512)

  /// The protective MBR (sector 0) for a disk of `totalSectors`.
  static func protectiveMBR(totalSectors: UInt64) -> [UInt8] {
    var mbr = [UInt8](repeating: 0, count: 512)
    mbr.replaceSubrange(446..<454, with: [0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF])
    mbr.storeLE(1, at: 454, width: 4)
    mbr.storeLE(min(totalSectors - 1, 0xFFFF_FFFF), at: 458, width: 4)
    mbr[510] = 0x55
    mbr[511] = 0xAA
    return mbr
  }

  /// The partition entry array.
  static func entryArray(_ entries: [GPTEntry]) -> [UInt8] {
    var array = [UInt8](repeating: 0, count: entryCount * entrySize)
    for (i, e) in entries.enumerated() {
      let off = i * entrySize
      array.replaceSubrange(off..<(off + 16), with: e.type)
      array.replaceSubrange((off + 16)..<(off + 32), with: e.unique)
      array.storeLE(e.firstLBA, at: off + 32, width: 8)
      array.storeLE(e.lastLBA, at: off + 40, width: 8)
      for (j, u) in e.name.utf16.prefix(36).enumerated() { array.storeLE(UInt64(u), at: off + 56 + 2 * j, width: 2) }
    }
    return array
  }

  /// A GPT header sector at `myLBA` whose array starts at `arrayLBA`.
  static func header(myLBA: UInt64, alternateLBA: UInt64, arrayLBA: UInt64, totalSectors: UInt64,
                     diskGUID: [UInt8], arrayCRC: UInt32) -> [UInt8] {
    var h = [UInt8](repeating: 0, count: 512)
    h.replaceSubrange(0..<8, with: Array("EFI PART".utf8))
    h.storeLE(0x0001_0000, at: 8, width: 4)
    h.storeLE(92, at: 12, width: 4)
    h.storeLE(myLBA, at: 24, width: 8)
    h.storeLE(alternateLBA, at: 32, width: 8)
    h.storeLE(2 + arraySectors, at: 40, width: 8)  // first usable
    h.storeLE(totalSectors - 2 - arraySectors, at: 48, width: 8)  // last usable
    h.replaceSubrange(56..<72, with: diskGUID)
    h.storeLE(arrayLBA, at: 72, width: 8)
    h.storeLE(UInt64(entryCount), at: 80, width: 4)
    h.storeLE(UInt64(entrySize), at: 84, width: 4)
    h.storeLE(UInt64(arrayCRC), at: 88, width: 4)
    let crc = CRC32.checksum(Array(h[0..<92]))
    h.storeLE(UInt64(crc), at: 16, width: 4)
    return h
  }

  /// A deterministic version-4-style GUID derived from `seed` bytes.
  static func guid(seed: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var s = seed
    for i in 0..<4 {
      s.append(UInt8(i))
      out.appendLE(UInt64(CRC32.checksum(s)), width: 4)
    }
    out[7] = (out[7] & 0x0F) | 0x40
    out[8] = (out[8] & 0x3F) | 0x80
    return out
  }
}
