import Foundation
import Testing
import FirmwareCore
import TestSupport

/// An independent reading of a PE file for checking the loader: the section table and the DIR64
/// relocation sites, without FirmwareCore.
struct ReferencePE {
  struct Section { var name: String; var va: Int; var vsize: Int; var raw: Int; var rawSize: Int }
  var sections: [Section] = []
  var machine: Int
  var imageBase: UInt64
  var sizeOfImage: Int
  var sizeOfHeaders: Int
  var dir64Sites: [Int] = []

  init(_ f: [UInt8]) {
    func u16(_ o: Int) -> Int { Int(f[o]) | Int(f[o + 1]) << 8 }
    func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
    let pe = u32(0x3C)
    let opt = pe + 24
    machine = u16(pe + 4)
    imageBase = UInt64(u32(opt + 24)) | UInt64(u32(opt + 28)) << 32
    sizeOfImage = u32(opt + 56)
    sizeOfHeaders = u32(opt + 60)
    let table = opt + u16(pe + 20)
    for i in 0..<u16(pe + 6) {
      let s = table + 40 * i
      let name = String(decoding: f[s..<(s + 8)].prefix { $0 != 0 }, as: UTF8.self)
      sections.append(Section(name: name, va: u32(s + 12), vsize: u32(s + 8), raw: u32(s + 20), rawSize: u32(s + 16)))
    }
    let dirs = u32(opt + 108)
    guard dirs > 5, u32(opt + 112 + 44) > 0 else { return }
    let rva = u32(opt + 112 + 40)
    let size = u32(opt + 112 + 44)
    let home = sections.first { $0.va <= rva && rva < $0.va + $0.rawSize }!
    var p = home.raw + rva - home.va
    let end = p + size
    while p < end {
      let page = u32(p)
      let blockSize = u32(p + 4)
      for e in stride(from: p + 8, to: p + blockSize, by: 2) where u16(e) >> 12 == 10 {
        dir64Sites.append(page + (u16(e) & 0xFFF))
      }
      p += blockSize
    }
  }

  /// The file offset holding the byte at image offset `rva`, when a section's file data covers it.
  func fileOffset(ofRVA rva: Int) -> Int? {
    for s in sections where rva >= s.va && rva < s.va + min(s.vsize == 0 ? s.rawSize : s.vsize, s.rawSize) {
      return s.raw + rva - s.va
    }
    return nil
  }
}

@Suite struct PEImageTests {
  static func le64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }

  struct Expectation: CustomTestStringConvertible, Sendable {
    var variable: String
    var sectionAlignment: UInt32
    var nxCompatible: Bool
    var dir64: Bool
    var signed: Bool
    var testDescription: String { variable }
  }

  static let realImages: [Expectation] = [
    Expectation(variable: "SHIM_EFI", sectionAlignment: 0x1000, nxCompatible: false, dir64: false, signed: true),
    Expectation(variable: "GRUB_EFI", sectionAlignment: 0x1000, nxCompatible: false, dir64: true, signed: true),
    Expectation(variable: "GRUB_BIN_EFI", sectionAlignment: 0x1000, nxCompatible: false, dir64: true, signed: false),
    Expectation(variable: "SYSTEMD_BOOT_EFI", sectionAlignment: 0x1000, nxCompatible: true, dir64: true, signed: false),
    Expectation(variable: "SYSTEMD_STUB_EFI", sectionAlignment: 0x1000, nxCompatible: true, dir64: true, signed: false),
    Expectation(variable: "KERNEL_IMAGE", sectionAlignment: 0x10000, nxCompatible: true, dir64: false, signed: true),
  ]

  /// Loads each real image 1 GiB + 64 KiB above its ImageBase into a buffer pre-filled with 0xA5 and
  /// checks the result byte for byte against an independent copy-and-relocate.
  @Test(.enabled(if: Arm64Assets.available, "Scripts/fetch-arm64-assets has not been run"), arguments: realImages)
  func loadsRealImageAtAnotherAddress(_ expected: Expectation) throws {
    guard let file = try Arm64Assets.load(expected.variable) else { return }
    let image = try PEImage(bytes: file)
    let reference = ReferencePE(file)

    #expect(reference.machine == 0xAA64)
    #expect(image.subsystem == .application)
    #expect(image.sectionAlignment == expected.sectionAlignment)
    #expect(image.isNXCompatible == expected.nxCompatible)
    #expect(image.sizeOfImage == UInt32(reference.sizeOfImage))
    #expect(image.imageBase == reference.imageBase)
    #expect(image.sections.count == reference.sections.count)
    let text = try #require(image.section(named: Array(".text".utf8)))
    #expect(text.isExecutable)
    #expect(text.virtualRange.contains(UInt64(image.entryPoint)), "entry 0x\(String(image.entryPoint, radix: 16)) not in .text")
    #expect(image.certificateTable.isEmpty == !expected.signed)
    if expected.signed { #expect(image.certificateTable.upperBound <= file.count) }
    let sites = Array(sequence(state: image.relocationSites) { state in try? state.next() })
    #expect(sites.map(Int.init) == reference.dir64Sites)
    #expect(sites.isEmpty == !expected.dir64)

    let loadAddress = image.imageBase &+ 0x4001_0000
    let delta = loadAddress &- image.imageBase
    let size = Int(image.sizeOfImage)
    var memory = [UInt8](repeating: 0xA5, count: size + 4096)
    try memory.withUnsafeMutableBytes { try image.load(into: $0, at: loadAddress) }

    // The independent load: zeros, headers, each section's file bytes, then DIR64 fix-ups.
    var expectedImage = [UInt8](repeating: 0, count: size)
    expectedImage.replaceSubrange(0..<reference.sizeOfHeaders, with: file[0..<reference.sizeOfHeaders])
    for s in reference.sections {
      let n = min(s.vsize == 0 ? s.rawSize : s.vsize, s.rawSize)
      expectedImage.replaceSubrange(s.va..<(s.va + n), with: file[s.raw..<(s.raw + n)])
    }
    for site in reference.dir64Sites {
      let original = Self.le64(file, try #require(reference.fileOffset(ofRVA: site)))
      expectedImage.storeLE(original &+ delta, at: site, width: 8)
    }
    #expect((Array(memory[0..<size]) == expectedImage) == true, "loaded image differs from the reference load")
    #expect(memory[size...].allSatisfy { $0 == 0xA5 }, "bytes past SizeOfImage were written")

    // What a user looks at: a relocated pointer, a section's bytes, bss.
    if let site = reference.dir64Sites.first {
      let original = Self.le64(file, reference.fileOffset(ofRVA: site)!)
      #expect(Self.le64(memory, site) == original &+ delta)
      #expect(Self.le64(memory, site) != original)
    }
    for s in reference.sections where s.vsize > s.rawSize {
      #expect(memory[(s.va + s.rawSize)..<(s.va + s.vsize)].allSatisfy { $0 == 0 }, "\(s.name) bss not zeroed")
    }
    // Sections without relocation sites are the file's bytes unchanged.
    for s in reference.sections where !reference.dir64Sites.contains(where: { $0 + 8 > s.va && $0 < s.va + s.vsize }) {
      let n = min(s.vsize == 0 ? s.rawSize : s.vsize, s.rawSize)
      #expect((memory[s.va..<(s.va + n)] == file[s.raw..<(s.raw + n)]) == true, "\(s.name) differs from the file")
    }
  }

  /// GRUB's core image finds its modules through the "mods" section: a grub_module_info64 ('mimg').
  @Test(.enabled(if: Arm64Assets.available, "Scripts/fetch-arm64-assets has not been run"),
        arguments: ["GRUB_EFI", "GRUB_BIN_EFI"])
  func grubHasItsModulesSection(_ variable: String) throws {
    guard let file = try Arm64Assets.load(variable) else { return }
    let image = try PEImage(bytes: file)
    let mods = try #require(image.section(named: Array("mods".utf8)))
    #expect(file.le32(at: Int(mods.rawDataOffset)) == 0x676D_696D)
    #expect(image.section(named: Array("nomods".utf8)) == nil)
  }

  /// The kernel has no relocation table and is position independent: it loads anywhere 64 KiB-aligned,
  /// and its .data ends in zeroed bss.
  @Test(.enabled(if: Arm64Assets.available, "Scripts/fetch-arm64-assets has not been run"))
  func kernelImageLoadsWithoutRelocations() throws {
    guard let file = try Arm64Assets.load("KERNEL_IMAGE") else { return }
    let image = try PEImage(bytes: file)
    #expect(!image.hasRelocations)
    #expect(!image.relocationsStripped)
    let data = try #require(image.section(named: Array(".data".utf8)))
    #expect(data.loadedSize > data.rawDataSize)
    var memory = [UInt8](repeating: 0xFF, count: Int(image.sizeOfImage))
    #expect(throws: PEImageError.badLoadAddress(0x4000_8000, alignment: 0x10000)) {
      try memory.withUnsafeMutableBytes { try image.load(into: $0, at: 0x4000_8000) }
    }
    try memory.withUnsafeMutableBytes { try image.load(into: $0, at: 0x4001_0000) }
    #expect(memory[Int(data.virtualAddress + data.rawDataSize)..<Int(data.virtualAddress + data.loadedSize)].allSatisfy { $0 == 0 })
    #expect(memory.le32(at: 0x38) == 0x644D_5241)  // "ARM\x64" in the loaded headers
  }

  /// A truncated real file: the last section's raw data is cut.
  @Test(.enabled(if: Arm64Assets.available, "Scripts/fetch-arm64-assets has not been run"))
  func truncatedRealImageIsRejected() throws {
    guard let file = try Arm64Assets.load("SYSTEMD_BOOT_EFI") else { return }
    let reference = ReferencePE(file)
    let last = reference.sections.count - 1
    let cut = Array(file[0..<(reference.sections[last].raw + 1)])
    #expect(throws: PEImageError.sectionBeyondFile(index: last)) { try PEImage(bytes: cut) }
    #expect(throws: PEImageError.truncated(needed: 64, size: 63)) { try PEImage(bytes: Array(file[0..<63])) }
  }

  // MARK: hand-made images

  /// A minimal AArch64 EFI application: headers at 0..<0x200; .text (0x1000, 0x200 bytes), .data
  /// (0x2000: 0x200 file bytes, 0x1000 in memory: bss), .reloc (0x4000) with one block: a DIR64 at
  /// 0x2008 (a pointer to 0x1040) and an ABSOLUTE pad; .text holds a pointer to 0x2100 at 0x1010. ImageBase 0x10000, SizeOfImage 0x5000.
  struct MiniPE {
    static let pe = 0x40, opt = 0x58, table = 0x58 + 240
    var bytes: [UInt8]

    init(machine: UInt16 = 0xAA64, relocations: [UInt16] = [0xA008, 0x0000],
         relocationPage: UInt32 = 0x2000) {
      var f = [UInt8](repeating: 0, count: 0x800)
      f[0] = 0x4D; f[1] = 0x5A
      f.storeLE(UInt64(Self.pe), at: 0x3C, width: 4)
      f.replaceSubrange(Self.pe..<(Self.pe + 4), with: [0x50, 0x45, 0, 0])
      f.storeLE(UInt64(machine), at: Self.pe + 4, width: 2)
      f.storeLE(3, at: Self.pe + 6, width: 2)              // NumberOfSections
      f.storeLE(240, at: Self.pe + 20, width: 2)           // SizeOfOptionalHeader
      f.storeLE(0x0206, at: Self.pe + 22, width: 2)        // executable, line numbers stripped
      let o = Self.opt
      f.storeLE(0x20B, at: o, width: 2)
      f.storeLE(0x1000, at: o + 16, width: 4)              // AddressOfEntryPoint
      f.storeLE(0x10000, at: o + 24, width: 8)             // ImageBase
      f.storeLE(0x1000, at: o + 32, width: 4)              // SectionAlignment
      f.storeLE(0x200, at: o + 36, width: 4)               // FileAlignment
      f.storeLE(0x5000, at: o + 56, width: 4)              // SizeOfImage
      f.storeLE(0x200, at: o + 60, width: 4)               // SizeOfHeaders
      f.storeLE(10, at: o + 68, width: 2)                  // EFI application
      f.storeLE(16, at: o + 108, width: 4)
      let relocSize = 8 + 2 * relocations.count
      f.storeLE(0x4000, at: o + 112 + 40, width: 4)
      f.storeLE(UInt64(relocSize), at: o + 112 + 44, width: 4)
      func section(_ i: Int, _ name: String, va: Int, vsize: Int, raw: Int, rawSize: Int, flags: UInt32) {
        let s = Self.table + 40 * i
        f.replaceSubrange(s..<(s + name.utf8.count), with: Array(name.utf8))
        f.storeLE(UInt64(vsize), at: s + 8, width: 4)
        f.storeLE(UInt64(va), at: s + 12, width: 4)
        f.storeLE(UInt64(rawSize), at: s + 16, width: 4)
        f.storeLE(UInt64(raw), at: s + 20, width: 4)
        f.storeLE(UInt64(flags), at: s + 36, width: 4)
      }
      section(0, ".text", va: 0x1000, vsize: 0x100, raw: 0x200, rawSize: 0x200, flags: 0x6000_0020)
      section(1, ".data", va: 0x2000, vsize: 0x1000, raw: 0x400, rawSize: 0x200, flags: 0xC000_0040)
      section(2, ".reloc", va: 0x4000, vsize: relocSize, raw: 0x600, rawSize: 0x200,
              flags: 0x4200_0040)
      for i in 0x200..<0x300 { f[i] = UInt8(truncatingIfNeeded: i) }            // code
      for i in 0x400..<0x600 { f[i] = UInt8(truncatingIfNeeded: i * 7) }        // data
      f.storeLE(0x10000 + 0x1040, at: 0x400 + 8, width: 8)                     // a pointer into .text
      f.storeLE(0x10000 + 0x2100, at: 0x200 + 0x10, width: 8)                  // a pointer into .data
      f.storeLE(UInt64(relocationPage), at: 0x600, width: 4)
      f.storeLE(UInt64(relocSize), at: 0x604, width: 4)
      for (i, e) in relocations.enumerated() { f.storeLE(UInt64(e), at: 0x608 + 2 * i, width: 2) }
      bytes = f
    }

    /// The bytes with the field at file offset `offset` set to `value`.
    func with(_ offset: Int, _ value: UInt64, width: Int) -> [UInt8] {
      var b = bytes
      b.storeLE(value, at: offset, width: width)
      return b
    }
    /// The offset of section `i`'s field at `field` (8 VirtualSize, 12 VirtualAddress, 16 SizeOfRawData, 20 PointerToRawData).
    static func sectionField(_ i: Int, _ field: Int) -> Int { table + 40 * i + field }
  }

  @Test func miniImageLoadsAndRelocates() throws {
    // .text's pointer is at 0x1010 (a DIR64 in page 0x1000) and .data's at 0x2008 (page 0x2000):
    // two blocks, so build the second one into the table by hand.
    var mini = MiniPE(relocations: [0xA008, 0x0000])
    var f = mini.bytes
    f.storeLE(0x1000, at: 0x60C, width: 4)       // second block: page 0x1000
    f.storeLE(12, at: 0x610, width: 4)
    f.storeLE(0xA010, at: 0x614, width: 2)
    f.storeLE(0x0000, at: 0x616, width: 2)
    f.storeLE(24, at: MiniPE.opt + 112 + 44, width: 4)
    f.storeLE(24, at: MiniPE.sectionField(2, 8), width: 4)
    mini.bytes = f
    let image = try PEImage(bytes: mini.bytes)
    #expect(image.sections.map { String(decoding: $0.name, as: UTF8.self) } == [".text", ".data", ".reloc"])
    #expect(image.hasRelocations && !image.isNXCompatible && image.subsystem == .application)
    #expect(Array(sequence(state: image.relocationSites) { try? $0.next() }) == [0x2008, 0x1010])

    var memory = [UInt8](repeating: 0xEE, count: 0x5000)
    try memory.withUnsafeMutableBytes { try image.load(into: $0, at: 0x8000_0000) }
    let delta: UInt64 = 0x8000_0000 - 0x10000
    #expect(memory.le64(at: 0x2008) == 0x10000 + 0x1040 + delta)
    #expect(memory.le64(at: 0x1010) == 0x10000 + 0x2100 + delta)
    #expect(Array(memory[0..<0x200]) == Array(f[0..<0x200]))
    #expect(Array(memory[0x1000..<0x1010]) == Array(f[0x200..<0x210]))
    #expect(Array(memory[0x1018..<0x1100]) == Array(f[0x218..<0x300]))
    #expect(memory[0x1100..<0x2000].allSatisfy { $0 == 0 }, ".text raw bytes past VirtualSize must not be copied")
    #expect(Array(memory[0x2010..<0x2200]) == Array(f[0x410..<0x600]))
    #expect(memory[0x2200..<0x3000].allSatisfy { $0 == 0 }, "bss")
    #expect(memory[0x3000..<0x4000].allSatisfy { $0 == 0 }, "gap between sections")

    // At its ImageBase nothing is relocated.
    try memory.withUnsafeMutableBytes { try image.load(into: $0, at: 0x10000) }
    #expect(memory.le64(at: 0x2008) == 0x10000 + 0x1040)
  }

  @Test func loadRefusesABadDestination() throws {
    let image = try PEImage(bytes: MiniPE().bytes)
    var small = [UInt8](repeating: 0, count: 0x4FFF)
    #expect(throws: PEImageError.destinationTooSmall(needed: 0x5000, available: 0x4FFF)) {
      try small.withUnsafeMutableBytes { try image.load(into: $0, at: 0x10000) }
    }
    var memory = [UInt8](repeating: 0, count: 0x5000)
    #expect(throws: PEImageError.badLoadAddress(0x10800, alignment: 0x1000)) {
      try memory.withUnsafeMutableBytes { try image.load(into: $0, at: 0x10800) }
    }
    #expect(throws: PEImageError.badLoadAddress(UInt64.max - 0xFFF, alignment: 0x1000)) {
      try memory.withUnsafeMutableBytes { try image.load(into: $0, at: UInt64.max - 0xFFF) }
    }
    // IMAGE_FILE_RELOCS_STRIPPED: only the linked address.
    let stripped = try PEImage(bytes: MiniPE().with(MiniPE.pe + 22, 0x0207, width: 2))
    #expect(throws: PEImageError.relocationsStripped(imageBase: 0x10000)) {
      try memory.withUnsafeMutableBytes { try stripped.load(into: $0, at: 0x20000) }
    }
    try memory.withUnsafeMutableBytes { try stripped.load(into: $0, at: 0x10000) }
  }

  @Test func corruptHeadersAreRejected() throws {
    let mini = MiniPE()
    let o = MiniPE.opt
    _ = try PEImage(bytes: mini.bytes)
    #expect(throws: PEImageError.truncated(needed: 64, size: 40)) { try PEImage(bytes: Array(mini.bytes[0..<40])) }
    #expect(throws: PEImageError.truncated(needed: MiniPE.table + 120, size: 0x180)) {
      try PEImage(bytes: Array(mini.bytes[0..<0x180]))
    }
    #expect(throws: PEImageError.noDOSSignature) { try PEImage(bytes: mini.with(0, 0x5A4E, width: 2)) }
    #expect(throws: PEImageError.peHeaderOutOfRange(offset: 0xFFFF_FFF0)) {
      try PEImage(bytes: mini.with(0x3C, 0xFFFF_FFF0, width: 4))
    }
    #expect(throws: PEImageError.peHeaderOutOfRange(offset: 0x7F0)) { try PEImage(bytes: mini.with(0x3C, 0x7F0, width: 4)) }
    #expect(throws: PEImageError.peHeaderOutOfRange(offset: 0x3C)) { try PEImage(bytes: mini.with(0x3C, 0x3C, width: 4)) }
    #expect(throws: PEImageError.noPESignature) { try PEImage(bytes: mini.with(MiniPE.pe, 0x4550_4550, width: 4)) }
    #expect(throws: PEImageError.wrongMachine(0x8664)) { try PEImage(bytes: MiniPE(machine: 0x8664).bytes) }
    #expect(throws: PEImageError.notPE32Plus(magic: 0x10B)) { try PEImage(bytes: mini.with(o, 0x10B, width: 2)) }
    #expect(throws: PEImageError.badOptionalHeaderSize(100)) { try PEImage(bytes: mini.with(MiniPE.pe + 20, 100, width: 2)) }
    #expect(throws: PEImageError.badOptionalHeaderSize(200)) { try PEImage(bytes: mini.with(MiniPE.pe + 20, 200, width: 2)) }
    #expect(throws: PEImageError.tooManyDataDirectories(17)) { try PEImage(bytes: mini.with(o + 108, 17, width: 4)) }
    #expect(throws: PEImageError.unsupportedSubsystem(3)) { try PEImage(bytes: mini.with(o + 68, 3, width: 2)) }
    #expect(throws: PEImageError.badAlignment(section: 0x1800, file: 0x200)) { try PEImage(bytes: mini.with(o + 32, 0x1800, width: 4)) }
    #expect(throws: PEImageError.badAlignment(section: 0x1000, file: 0)) { try PEImage(bytes: mini.with(o + 36, 0, width: 4)) }
    #expect(throws: PEImageError.badAlignment(section: 0x1000, file: 0x2000)) { try PEImage(bytes: mini.with(o + 36, 0x2000, width: 4)) }
    #expect(throws: PEImageError.badSectionCount(0)) { try PEImage(bytes: mini.with(MiniPE.pe + 6, 0, width: 2)) }
    #expect(throws: PEImageError.badSectionCount(97)) { try PEImage(bytes: mini.with(MiniPE.pe + 6, 97, width: 2)) }
    #expect(throws: PEImageError.badHeadersSize(0x100)) { try PEImage(bytes: mini.with(o + 60, 0x100, width: 4)) }
    #expect(throws: PEImageError.badHeadersSize(0x1000)) { try PEImage(bytes: mini.with(o + 60, 0x1000, width: 4)) }
    #expect(throws: PEImageError.badHeadersSize(0x200)) { try PEImage(bytes: mini.with(o + 56, 0x100, width: 4)) }  // > SizeOfImage
    #expect(throws: PEImageError.entryPointOutsideImage(0x3000)) { try PEImage(bytes: mini.with(o + 16, 0x3000, width: 4)) }
    #expect(throws: PEImageError.entryPointOutsideImage(0x1100)) { try PEImage(bytes: mini.with(o + 16, 0x1100, width: 4)) }
  }

  @Test func corruptSectionsAreRejected() throws {
    let mini = MiniPE()
    #expect(throws: PEImageError.sectionBeyondFile(index: 1)) {
      try PEImage(bytes: mini.with(MiniPE.sectionField(1, 20), 0x700, width: 4))
    }
    #expect(throws: PEImageError.sectionBeyondFile(index: 0)) {
      try PEImage(bytes: mini.with(MiniPE.sectionField(0, 20), 0xFFFF_FF00, width: 4))
    }
    // SizeOfImage smaller than the last section's end.
    #expect(throws: PEImageError.sectionBeyondImage(index: 2)) { try PEImage(bytes: mini.with(MiniPE.opt + 56, 0x4004, width: 4)) }
    #expect(throws: PEImageError.sectionBeyondImage(index: 1)) {
      try PEImage(bytes: mini.with(MiniPE.sectionField(1, 8), 0xFFFF_F000, width: 4))
    }
    #expect(throws: PEImageError.sectionBeyondImage(index: 0)) {
      try PEImage(bytes: mini.with(MiniPE.sectionField(0, 12), 0x100, width: 4))  // inside the headers
    }
    #expect(throws: PEImageError.sectionsOverlap(index: 1)) {
      try PEImage(bytes: mini.with(MiniPE.sectionField(1, 12), 0x1080, width: 4))
    }
  }

  @Test func corruptRelocationsAreRejected() throws {
    let mini = MiniPE()
    let directory = MiniPE.opt + 112 + 40
    #expect(throws: PEImageError.badRelocationBlock(offset: 0)) { try PEImage(bytes: mini.with(0x604, 0, width: 4)) }
    #expect(throws: PEImageError.badRelocationBlock(offset: 0)) { try PEImage(bytes: mini.with(0x604, 16, width: 4)) }
    #expect(throws: PEImageError.badRelocationBlock(offset: 0)) { try PEImage(bytes: mini.with(0x604, 11, width: 4)) }
    // A second block header that does not fit the table's last 4 bytes.
    var padded = mini.with(directory + 4, 18, width: 4)
    padded.storeLE(18, at: MiniPE.sectionField(2, 8), width: 4)
    #expect(throws: PEImageError.badRelocationBlock(offset: 12)) { try PEImage(bytes: padded) }
    #expect(throws: PEImageError.unsupportedRelocation(type: 3, rva: 0x2008)) {
      try PEImage(bytes: MiniPE(relocations: [0x3008]).bytes)
    }
    #expect(throws: PEImageError.relocationOutOfRange(rva: 0x4FFC)) {
      try PEImage(bytes: MiniPE(relocations: [0xAFFC], relocationPage: 0x4000).bytes)
    }
    #expect(throws: PEImageError.relocationOutOfRange(rva: 0xFFFF_F000 + 8)) {
      try PEImage(bytes: MiniPE(relocations: [0xA008], relocationPage: 0xFFFF_F000).bytes)
    }
    #expect(throws: PEImageError.directoryOutOfRange(index: 5)) { try PEImage(bytes: mini.with(directory, 0x4FFE, width: 4)) }
    #expect(throws: PEImageError.relocationsOutsideSection) { try PEImage(bytes: mini.with(directory, 0x3000, width: 4)) }
    #expect(throws: PEImageError.directoryOutOfRange(index: 4)) {
      var b = mini.with(MiniPE.opt + 112 + 32, 0x700, width: 4)
      b.storeLE(0x200, at: MiniPE.opt + 112 + 36, width: 4)
      return try PEImage(bytes: b)
    }
  }

  @Test func errorsDescribeThemselves() {
    #expect(PEImageError.wrongMachine(0x8664).description == "PE machine 0x8664, not AArch64 (0xaa64)")
    #expect(PEImageError.unsupportedRelocation(type: 3, rva: 0x2008).description.contains("type 3 at 0x2008"))
  }
}
