/// One-line messages for every FirmwareCore error (used by the firmware's console and the host CLI).
extension BlockDeviceError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .outOfRange: return "read outside the device"
    case .ioError(let s): return "device I/O error (status \(s))"
    case .timeout: return "device timed out"
    }
  }
}

extension DeviceTreeError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .badMagic: return "not a device tree blob (bad magic)"
    case .truncated: return "device tree truncated"
    case .unsupportedVersion(let v): return "device tree version \(v) unsupported"
    case .malformedStructure(let off): return "malformed device tree structure at offset \(off)"
    case .tooDeep: return "device tree nested too deeply"
    case .nodeNotFound: return "device tree node not found"
    }
  }
}

extension GPTError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .device(let e): return e.description
    case .noSignature: return "no GPT signature"
    case .badHeaderSize: return "GPT header size invalid"
    case .headerChecksumMismatch: return "GPT header CRC32 mismatch"
    case .entriesChecksumMismatch: return "GPT partition array CRC32 mismatch"
    case .badEntryGeometry: return "GPT partition entries out of bounds"
    case .noEFISystemPartition: return "no EFI system partition"
    }
  }
}

extension FATError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .device(let e): return e.description
    case .notFAT: return "not a FAT file system"
    case .badGeometry: return "FAT geometry invalid"
    case .badCluster(let c): return "FAT cluster \(c) out of range"
    case .clusterLoop(let c): return "FAT cluster chain loops (cluster \(c) comes twice)"
    case .chainTooShort(let expected, let found):
      return "FAT cluster chain ends after \(found) of the file's \(expected) clusters"
    case .chainTooLong(let limit): return "FAT cluster chain goes on past the \(limit) clusters its size allows"
    case .notFound: return "file not found"
    case .notADirectory: return "not a directory"
    case .isADirectory: return "is a directory"
    case .fileTooLarge(let s): return "file too large (\(s) bytes)"
    }
  }
}

extension BootEntryError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .malformedLine(let n): return "malformed line \(n)"
    case .missingLinux: return "no 'linux' key"
    case .noEntries: return "no boot entries"
    case .entryNotFound: return "requested boot entry not found"
    }
  }
}

extension BootEntryChoiceError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .entriesDirectory(let e): return "/loader/entries: \(e)"
    case .selection(let e): return "no usable boot entry: \(e)"
    }
  }
}

extension KernelImageError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .tooSmall(let size): return "\(size) bytes, too short for the 64-byte header"
    case .badMagic: return "no \"ARM\\x64\" magic at offset 56"
    case .bigEndian: return "a big-endian kernel (not supported)"
    case .imageSizeTooSmall(let imageSize, let fileSize):
      return "header image_size \(imageSize) is smaller than the file (\(fileSize) bytes)"
    case .implausibleLayout(let textOffset, let imageSize):
      return "implausible header: text_offset 0x\(ByteString.hex(textOffset)), image_size 0x\(ByteString.hex(imageSize))"
    }
  }
}

extension BootLayoutError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .noRAMAfterFirmware: return "no RAM after the firmware"
    case .doesNotFit(let needed, let available): return "needs \(needed) bytes, \(available) available"
    }
  }
}

extension PEImageError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .truncated(let needed, let size): return "PE file truncated: \(size) bytes, headers need \(needed)"
    case .noDOSSignature: return "not a PE file (no \"MZ\")"
    case .peHeaderOutOfRange(let offset): return "PE header offset 0x\(ByteString.hex(UInt64(offset))) outside the file"
    case .noPESignature: return "no \"PE\\0\\0\" signature"
    case .wrongMachine(let m): return "PE machine 0x\(ByteString.hex(UInt64(m), digits: 4)), not AArch64 (0xaa64)"
    case .notPE32Plus(let magic): return "optional header magic 0x\(ByteString.hex(UInt64(magic))), not PE32+ (0x20b)"
    case .badOptionalHeaderSize(let s): return "PE optional header size \(s) too small for its fields"
    case .tooManyDataDirectories(let n): return "\(n) PE data directories (at most 16)"
    case .unsupportedSubsystem(let s): return "PE subsystem \(s) is not an EFI application or driver"
    case .badAlignment(let section, let file):
      return "PE alignments invalid (section 0x\(ByteString.hex(UInt64(section))), file 0x\(ByteString.hex(UInt64(file))))"
    case .badHeadersSize(let s): return "PE SizeOfHeaders 0x\(ByteString.hex(UInt64(s))) does not fit the headers, file and image"
    case .badSectionCount(let n): return "\(n) PE sections (1 to 96 allowed)"
    case .sectionBeyondFile(let i): return "PE section \(i) runs past the end of the file"
    case .sectionBeyondImage(let i): return "PE section \(i) lies outside SizeOfImage or inside the headers"
    case .sectionsOverlap(let i): return "PE section \(i) overlaps the one before it"
    case .entryPointOutsideImage(let e): return "PE entry point 0x\(ByteString.hex(UInt64(e))) is not inside a section"
    case .directoryOutOfRange(let i): return "PE data directory \(i) out of range"
    case .relocationsOutsideSection: return "PE base relocation table is not inside a section's file data"
    case .badRelocationBlock(let off): return "PE relocation block at table offset \(off) malformed"
    case .unsupportedRelocation(let type, let rva):
      return "PE relocation type \(type) at 0x\(ByteString.hex(rva)) unsupported (only DIR64)"
    case .relocationOutOfRange(let rva): return "PE relocation at 0x\(ByteString.hex(rva)) outside the image"
    case .relocationsStripped(let base): return "PE image has no relocations and must load at 0x\(ByteString.hex(base))"
    case .destinationTooSmall(let needed, let available): return "PE image needs \(needed) bytes, \(available) available"
    case .badLoadAddress(let address, let alignment):
      return "PE load address 0x\(ByteString.hex(address)) not aligned to 0x\(ByteString.hex(UInt64(alignment)))"
    }
  }
}

extension ZstdError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .truncatedInput: return "zstd data truncated"
    case .corruptData(let offset, let what): return "zstd data corrupt at offset \(offset): \(what.description)"
    case .outputTooSmall: return "zstd data decompresses to more than the output buffer holds"
    case .checksumMismatch(let expected, let computed):
      return "zstd content checksum mismatch (frame says \(ByteString.hex(UInt64(expected), digits: 8)), "
        + "data gives \(ByteString.hex(UInt64(computed), digits: 8)))"
    case .unsupported(.dictionary(let id)): return "zstd frame needs dictionary \(id) (unsupported)"
    case .unsupported(.noDataFrame): return "zstd input holds only skippable frames"
    }
  }
}

extension DecompressionError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .truncated: return "compressed data truncated"
    case .corrupt(let offset): return "compressed data corrupt at byte \(offset)"
    case .outputTooSmall(let capacity): return "decompressed data exceeds the \(capacity) bytes available"
    case .checksumMismatch(let expected, let computed):
      return "checksum mismatch (stored 0x\(ByteString.hex(UInt64(expected), digits: 8)), computed 0x\(ByteString.hex(UInt64(computed), digits: 8)))"
    case .lengthMismatch(let expected, let produced): return "size mismatch (stored \(expected), decompressed \(produced))"
    case .unsupported(let feature): return "unsupported: \(feature)"
    }
  }
}

extension EFIDevicePathError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .truncated(let offset): return "device path ends inside the node at offset \(offset), before End"
    case .badNodeLength(let offset, let length): return "device path node at offset \(offset) has length \(length) (< 4)"
    case .malformedNode(let offset): return "device path node at offset \(offset) is malformed"
    }
  }
}

extension ZstdError.Defect: CustomStringConvertible {
  public var description: String {
    switch self {
    case .badMagic: return "not a zstd frame (bad magic)"
    case .reservedBit: return "reserved bit set"
    case .blockType: return "reserved block type"
    case .blockSize: return "block larger than the frame's maximum"
    case .contentSize: return "frame content size differs from the data"
    case .literalsSection: return "bad literals section"
    case .huffmanTable: return "bad Huffman table"
    case .huffmanStream: return "bad Huffman stream"
    case .fseTable: return "bad FSE table"
    case .sequencesSection: return "bad sequences section"
    case .literalsOverrun: return "sequence takes more literals than decoded"
    case .offset: return "match offset outside the window"
    }
  }
}

extension KernelFormatError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .truncated: return "EFI zboot header truncated"
    case .payloadOutOfBounds(let offset, let size, let fileSize):
      return "EFI zboot payload (\(size) bytes at \(offset)) outside the \(fileSize)-byte file"
    case .unsupportedCompression(let type): return "EFI zboot compression \"\(ByteString.string(type))\" unsupported"
    }
  }
}

extension DiskIORangeError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .beyondMedia(let offset, let length, let mediaSize):
      return "\(length) bytes at offset \(offset) run past the \(mediaSize)-byte media"
    case .zeroBlockSize: return "block size 0"
    }
  }
}

extension RuntimeAddressMapError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .version(let v): return "memory descriptor version \(v) unsupported"
    case .descriptorSize(let s): return "memory descriptor size \(s) invalid"
    case .mapSize(let s): return "memory map size \(s) is not a whole number of descriptors"
    case .tooManyDescriptors(let n): return "memory map of \(n) descriptors is too long"
    case .badRegion(let i): return "runtime descriptor \(i) is unaligned or wraps past 2^64"
    }
  }
}
