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
