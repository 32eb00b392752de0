/// Why a PE32+ image was rejected or could not be loaded.
public enum PEImageError: Error, Equatable {
  /// The file ends before a header that must be there (`needed` bytes, the file has `size`).
  case truncated(needed: Int, size: Int)
  /// No "MZ" at offset 0.
  case noDOSSignature
  /// e_lfanew (offset 0x3c) points outside the file or before the end of itself.
  case peHeaderOutOfRange(offset: UInt32)
  /// No "PE\0\0" at e_lfanew.
  case noPESignature
  /// COFF Machine is not 0xAA64 (AArch64).
  case wrongMachine(UInt16)
  /// The optional header's magic is not 0x20B (PE32+).
  case notPE32Plus(magic: UInt16)
  /// SizeOfOptionalHeader cannot hold the fields and NumberOfRvaAndSizes data directories.
  case badOptionalHeaderSize(UInt16)
  /// NumberOfRvaAndSizes above 16.
  case tooManyDataDirectories(UInt32)
  /// Subsystem is not an EFI application (10), boot service driver (11) or runtime driver (12).
  case unsupportedSubsystem(UInt16)
  /// SectionAlignment or FileAlignment is not a power of two, FileAlignment > SectionAlignment, or
  /// SectionAlignment is above 2 MiB.
  case badAlignment(section: UInt32, file: UInt32)
  /// SizeOfHeaders is smaller than the headers, or larger than the file or SizeOfImage.
  case badHeadersSize(UInt32)
  /// NumberOfSections is 0 or above 96.
  case badSectionCount(UInt16)
  /// Section `index`'s raw data (PointerToRawData + SizeOfRawData) runs past the end of the file.
  case sectionBeyondFile(index: Int)
  /// Section `index` starts inside the headers or ends past SizeOfImage.
  case sectionBeyondImage(index: Int)
  /// Section `index` starts before the end of the previous one (sections must ascend, disjoint).
  case sectionsOverlap(index: Int)
  /// AddressOfEntryPoint is not inside any section.
  case entryPointOutsideImage(UInt32)
  /// Data directory `index` (4 certificates: a file range; 5 relocations: an RVA range) is out of range.
  case directoryOutOfRange(index: Int)
  /// The base relocation table is not inside one section's file-backed bytes.
  case relocationsOutsideSection
  /// The relocation block at table offset `offset` has a size below 8, an odd entry area, or runs past the table.
  case badRelocationBlock(offset: Int)
  /// A relocation of a type other than DIR64 (10) or ABSOLUTE (0) padding, at image offset `rva`.
  case unsupportedRelocation(type: UInt8, rva: UInt64)
  /// A DIR64 relocation whose 8 bytes are not inside SizeOfImage.
  case relocationOutOfRange(rva: UInt64)
  /// The image has no relocations (IMAGE_FILE_RELOCS_STRIPPED) and must run at its ImageBase.
  case relocationsStripped(imageBase: UInt64)
  /// The destination buffer is smaller than SizeOfImage.
  case destinationTooSmall(needed: UInt32, available: Int)
  /// The load address is not a multiple of SectionAlignment, or the image would wrap the address space.
  case badLoadAddress(UInt64, alignment: UInt32)
}

/// What an EFI image is (PE Subsystem); it decides the memory types of its code and data.
public enum EFISubsystem: UInt16, Equatable {
  case application = 10
  case bootServiceDriver = 11
  case runtimeDriver = 12
}

/// One entry of a PE section table.
public struct PESection: Equatable {
  /// The name, NUL padding removed (up to 8 bytes; "/4"-style long-name references kept as they are).
  public var name: [UInt8]
  /// Where the section starts, relative to the image base.
  public var virtualAddress: UInt32
  /// Its size in memory: VirtualSize, or SizeOfRawData when an old linker left VirtualSize 0.
  public var loadedSize: UInt32
  /// Where its initialized bytes are in the file (PointerToRawData).
  public var rawDataOffset: UInt32
  /// How many initialized bytes the file holds for it (SizeOfRawData, file-aligned).
  public var rawDataSize: UInt32
  /// IMAGE_SCN_* flags.
  public var characteristics: UInt32

  /// The bytes copied from the file; the rest of `loadedSize` is zero (bss).
  public var copiedSize: UInt32 { min(rawDataSize, loadedSize) }
  /// True for IMAGE_SCN_MEM_EXECUTE.
  public var isExecutable: Bool { characteristics & 0x2000_0000 != 0 }
  /// The image offsets it covers.
  public var virtualRange: Range<UInt64> { UInt64(virtualAddress)..<(UInt64(virtualAddress) + UInt64(loadedSize)) }
}

/// A parsed and checked PE32+ image for AArch64 (the format of UEFI applications and of the arm64
/// Linux Image), and its loader. Every header field, section, data directory and relocation is
/// checked against the file's size and SizeOfImage when parsed, so ``load(into:at:)`` cannot
/// touch memory outside the image. Generic over the file's storage: an array on the host, guest
/// memory (an `UnsafeRawBufferPointer`) in the firmware.
public struct PEImage<Bytes: RandomAccessCollection> where Bytes.Element == UInt8, Bytes.Index == Int {
  /// The file.
  public let bytes: Bytes
  /// COFF Characteristics (IMAGE_FILE_*).
  public let characteristics: UInt16
  /// The address the image was linked for; relocations are relative to it.
  public let imageBase: UInt64
  /// AddressOfEntryPoint: an offset into the loaded image, inside a section.
  public let entryPoint: UInt32
  /// The alignment the load address needs (64 KiB for the Linux kernel, 4 KiB for GRUB).
  public let sectionAlignment: UInt32
  /// The alignment of the sections' raw data in the file.
  public let fileAlignment: UInt32
  /// How many bytes the loaded image occupies.
  public let sizeOfImage: UInt32
  /// How many file bytes (DOS, PE and section headers) are copied to the image's start.
  public let sizeOfHeaders: UInt32
  /// Application, boot service driver or runtime driver.
  public let subsystem: EFISubsystem
  /// IMAGE_DLLCHARACTERISTICS_*.
  public let dllCharacteristics: UInt16
  /// The section table, in file order (ascending, disjoint virtual ranges).
  public let sections: [PESection]
  /// The base relocation table: its offset in the file and its size (0 when the image has none).
  let relocationFileOffset: Int
  let relocationTableSize: Int
  /// The Authenticode certificate table's file range (data directory 4), empty when unsigned.
  public let certificateTable: Range<Int>

  /// The image's code expects W^X mappings (IMAGE_DLLCHARACTERISTICS_NX_COMPAT).
  public var isNXCompatible: Bool { dllCharacteristics & 0x0100 != 0 }
  /// The image carries a base relocation table. One without (the Linux kernel) still loads at any
  /// aligned address unless ``relocationsStripped``: it is position independent.
  public var hasRelocations: Bool { relocationTableSize > 0 }
  /// IMAGE_FILE_RELOCS_STRIPPED: the image must run at ``imageBase``.
  public var relocationsStripped: Bool { characteristics & 0x0001 != 0 }

  /// The first section called `name` (GRUB's embedded modules are in "mods").
  public func section(named name: [UInt8]) -> PESection? {
    for s in sections where s.name == name { return s }
    return nil
  }

  /// Parses and checks the headers, section table and relocation table of `bytes`.
  public init(bytes: Bytes) throws(PEImageError) {
    self.bytes = bytes
    let size = bytes.count
    guard size >= 64 else { throw .truncated(needed: 64, size: size) }
    guard bytes.le16(at: 0) == 0x5A4D else { throw .noDOSSignature }
    let lfanew = bytes.le32(at: 0x3C)!
    // 24 bytes: "PE\0\0" and the COFF header; e_lfanew cannot point into the DOS header's fields.
    guard lfanew >= 0x40, Int(lfanew) <= size - 24 else { throw .peHeaderOutOfRange(offset: lfanew) }
    let pe = Int(lfanew)
    guard bytes.le32(at: pe) == 0x0000_4550 else { throw .noPESignature }
    let machine = bytes.le16(at: pe + 4)!
    guard machine == 0xAA64 else { throw .wrongMachine(machine) }
    let sectionCount = bytes.le16(at: pe + 6)!
    let optionalSize = bytes.le16(at: pe + 20)!
    characteristics = bytes.le16(at: pe + 22)!

    let opt = pe + 24
    guard let magic = bytes.le16(at: opt) else { throw .truncated(needed: opt + 2, size: size) }
    guard magic == 0x20B else { throw .notPE32Plus(magic: magic) }
    // PE32+ fields up to NumberOfRvaAndSizes take 112 bytes; each data directory 8 more.
    guard optionalSize >= 112 else { throw .badOptionalHeaderSize(optionalSize) }
    guard size - opt >= 112 else { throw .truncated(needed: opt + 112, size: size) }
    entryPoint = bytes.le32(at: opt + 16)!
    imageBase = bytes.le64(at: opt + 24)!
    sectionAlignment = bytes.le32(at: opt + 32)!
    fileAlignment = bytes.le32(at: opt + 36)!
    sizeOfImage = bytes.le32(at: opt + 56)!
    sizeOfHeaders = bytes.le32(at: opt + 60)!
    let rawSubsystem = bytes.le16(at: opt + 68)!
    dllCharacteristics = bytes.le16(at: opt + 70)!
    let directoryCount = bytes.le32(at: opt + 108)!
    guard directoryCount <= 16 else { throw .tooManyDataDirectories(directoryCount) }
    guard Int(optionalSize) >= 112 + 8 * Int(directoryCount) else { throw .badOptionalHeaderSize(optionalSize) }
    guard let sub = EFISubsystem(rawValue: rawSubsystem) else { throw .unsupportedSubsystem(rawSubsystem) }
    subsystem = sub
    guard Self.isPowerOfTwo(sectionAlignment), Self.isPowerOfTwo(fileAlignment), fileAlignment <= sectionAlignment,
          sectionAlignment <= 1 << 21
    else { throw .badAlignment(section: sectionAlignment, file: fileAlignment) }

    // The headers (through the section table) must be inside SizeOfHeaders, which is inside the
    // file and the image: the loader copies SizeOfHeaders bytes, and GRUB re-reads its section
    // table from memory.
    guard sectionCount >= 1, sectionCount <= 96 else { throw .badSectionCount(sectionCount) }
    let table = opt + Int(optionalSize)
    let headersEnd = table + 40 * Int(sectionCount)
    guard headersEnd <= size else { throw .truncated(needed: headersEnd, size: size) }
    guard Int(sizeOfHeaders) >= headersEnd, Int(sizeOfHeaders) <= size, sizeOfHeaders <= sizeOfImage
    else { throw .badHeadersSize(sizeOfHeaders) }

    var sections: [PESection] = []
    sections.reserveCapacity(Int(sectionCount))
    var previousEnd = UInt64(sizeOfHeaders)
    for index in 0..<Int(sectionCount) {
      let at = table + 40 * index
      var name: [UInt8] = []
      for i in 0..<8 {
        let c = bytes.byte(at: at + i)!
        if c == 0 { break }
        name.append(c)
      }
      let virtualSize = bytes.le32(at: at + 8)!
      let section = PESection(
        name: name, virtualAddress: bytes.le32(at: at + 12)!,
        loadedSize: virtualSize != 0 ? virtualSize : bytes.le32(at: at + 16)!,
        rawDataOffset: bytes.le32(at: at + 20)!, rawDataSize: bytes.le32(at: at + 16)!,
        characteristics: bytes.le32(at: at + 36)!)
      // The whole of SizeOfRawData must be in the file (as edk2 checks), even if less is copied.
      guard UInt64(section.rawDataOffset) + UInt64(section.rawDataSize) <= UInt64(size) || section.rawDataSize == 0
      else { throw .sectionBeyondFile(index: index) }
      guard UInt64(section.virtualAddress) >= UInt64(sizeOfHeaders), section.virtualRange.upperBound <= UInt64(sizeOfImage)
      else { throw .sectionBeyondImage(index: index) }
      guard UInt64(section.virtualAddress) >= previousEnd else { throw .sectionsOverlap(index: index) }
      previousEnd = section.virtualRange.upperBound
      sections.append(section)
    }
    self.sections = sections
    let entry = UInt64(entryPoint)
    guard sections.contains(where: { $0.virtualRange.contains(entry) }) else { throw .entryPointOutsideImage(entryPoint) }

    // Data directory 4 holds a file offset, not an RVA: the signature is not loaded.
    let directories = opt + 112
    var certificates = 0..<0
    if directoryCount > 4, let offset = bytes.le32(at: directories + 32), let length = bytes.le32(at: directories + 36),
       length > 0 {
      guard UInt64(offset) + UInt64(length) <= UInt64(size) else { throw .directoryOutOfRange(index: 4) }
      certificates = Int(offset)..<(Int(offset) + Int(length))
    }
    certificateTable = certificates
    var relocationOffset = 0
    var relocationSize = 0
    if directoryCount > 5, let rva = bytes.le32(at: directories + 40), let length = bytes.le32(at: directories + 44),
       length > 0 {
      guard UInt64(rva) + UInt64(length) <= UInt64(sizeOfImage) else { throw .directoryOutOfRange(index: 5) }
      // Read from the file, not from the loaded image: a relocation cannot then rewrite the table.
      guard let home = sections.first(where: {
        $0.virtualAddress <= rva && UInt64(rva) + UInt64(length) <= UInt64($0.virtualAddress) + UInt64($0.copiedSize)
      }) else { throw .relocationsOutsideSection }
      relocationOffset = Int(home.rawDataOffset) + Int(rva - home.virtualAddress)
      relocationSize = Int(length)
    }
    relocationFileOffset = relocationOffset
    relocationTableSize = relocationSize
    // Walk the table once now, so that a loaded image never fails half-relocated.
    var relocations = relocationSites
    while try relocations.next() != nil {}
  }

  /// The sites of the image's DIR64 relocations, in table order.
  public var relocationSites: PERelocationSites<Bytes> {
    PERelocationSites(bytes: bytes, table: relocationFileOffset, size: relocationTableSize, sizeOfImage: sizeOfImage)
  }

  /// Copies the image into `destination` for it to run at `loadAddress`: the headers
  /// (SizeOfHeaders bytes), each section's file bytes, zeros for the rest of SizeOfImage (bss and
  /// gaps), then the base relocations for `loadAddress - imageBase`. `destination` must hold
  /// SizeOfImage bytes; bytes past them are not touched. The caller cleans the D-cache and
  /// invalidates the I-cache before running the image.
  public func load(into destination: UnsafeMutableRawBufferPointer, at loadAddress: UInt64) throws(PEImageError) {
    let imageSize = Int(sizeOfImage)
    guard destination.count >= imageSize, let base = destination.baseAddress
    else { throw .destinationTooSmall(needed: sizeOfImage, available: destination.count) }
    guard loadAddress & UInt64(sectionAlignment - 1) == 0, loadAddress <= UInt64.max - UInt64(sizeOfImage)
    else { throw .badLoadAddress(loadAddress, alignment: sectionAlignment) }
    let delta = loadAddress &- imageBase
    guard delta == 0 || !relocationsStripped else { throw .relocationsStripped(imageBase: imageBase) }

    _ = base.initializeMemory(as: UInt8.self, repeating: 0, count: imageSize)
    copy(fileOffset: 0, count: Int(sizeOfHeaders), to: base)
    for s in sections where s.copiedSize > 0 {
      copy(fileOffset: Int(s.rawDataOffset), count: Int(s.copiedSize), to: base + Int(s.virtualAddress))
    }
    guard delta != 0 else { return }
    var relocations = relocationSites
    while let site = try relocations.next() {
      let value = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: Int(site), as: UInt64.self))
      base.storeBytes(of: (value &+ delta).littleEndian, toByteOffset: Int(site), as: UInt64.self)
    }
  }

  /// Copies `count` file bytes from `fileOffset` (checked in init) to `target`.
  func copy(fileOffset: Int, count: Int, to target: UnsafeMutableRawPointer) {
    let copied: Void? = bytes.withContiguousStorageIfAvailable { source in
      target.copyMemory(from: source.baseAddress! + fileOffset, byteCount: count)
    }
    guard copied == nil else { return }
    var i = 0
    for b in bytes[(bytes.startIndex + fileOffset)..<(bytes.startIndex + fileOffset + count)] {
      target.storeBytes(of: b, toByteOffset: i, as: UInt8.self)
      i += 1
    }
  }

  static func isPowerOfTwo(_ v: UInt32) -> Bool { v != 0 && v & (v - 1) == 0 }
}

/// The DIR64 relocation sites of a base relocation table (IMAGE_BASE_RELOCATION blocks of a page
/// RVA, a block size and 16-bit entries: 4-bit type, 12-bit page offset). ABSOLUTE (0) entries are
/// padding and skipped; any other type is an error, as is a block that does not fit the table or
/// a site whose 8 bytes are not inside the image.
public struct PERelocationSites<Bytes: RandomAccessCollection> where Bytes.Element == UInt8, Bytes.Index == Int {
  let bytes: Bytes
  let table: Int
  let size: Int
  let sizeOfImage: UInt32
  /// The next block's offset in the table, and the next entry's offset and the end of the current block.
  var blockOffset = 0
  var entryOffset = 0
  var blockEnd = 0
  var pageRVA: UInt32 = 0

  /// The next site (an offset into the loaded image), nil after the last.
  public mutating func next() throws(PEImageError) -> UInt32? {
    while true {
      while entryOffset < blockEnd {
        let entry = bytes.le16(at: table + entryOffset)!
        entryOffset += 2
        let type = UInt8(entry >> 12)
        let rva = UInt64(pageRVA) + UInt64(entry & 0xFFF)
        switch type {
        case 0: continue
        case 10:
          guard rva + 8 <= UInt64(sizeOfImage) else { throw .relocationOutOfRange(rva: rva) }
          return UInt32(rva)
        default: throw .unsupportedRelocation(type: type, rva: rva)
        }
      }
      // Blocks are normally 32-bit aligned, but shim's one-entry block is 10 bytes long.
      guard blockOffset < size else { return nil }
      guard size - blockOffset >= 8, let page = bytes.le32(at: table + blockOffset),
            let blockSize = bytes.le32(at: table + blockOffset + 4),
            blockSize >= 8, blockSize % 2 == 0, Int(blockSize) <= size - blockOffset
      else { throw .badRelocationBlock(offset: blockOffset) }
      pageRVA = page
      entryOffset = blockOffset + 8
      blockEnd = blockOffset + Int(blockSize)
      blockOffset = blockEnd
    }
  }
}
