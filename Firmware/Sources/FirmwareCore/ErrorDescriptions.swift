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
