/// Why a GPT was rejected.
public enum GPTError: Error, Equatable {
  case device(BlockDeviceError)
  case noSignature
  case badHeaderSize
  case headerChecksumMismatch
  case entriesChecksumMismatch
  case badEntryGeometry
  case noEFISystemPartition
}

/// One used GPT partition entry.
public struct GPTPartition: Equatable {
  public var typeGUID: [UInt8]
  public var uniqueGUID: [UInt8]
  public var firstLBA: UInt64
  public var lastLBA: UInt64
  public var attributes: UInt64
  /// Number of sectors.
  public var sectorCount: UInt64 { lastLBA - firstLBA + 1 }
  /// True for the EFI system partition type C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
  public var isEFISystemPartition: Bool { EFIGUID(bytes: typeGUID) == .efiSystemPartition }
}

/// That a GPT was read from its backup header because the primary one was unusable.
public struct GPTFallback: Equatable, CustomStringConvertible {
  /// Why the primary header (or its entry array) was refused.
  public var primaryError: GPTError
  /// Where the backup header was read.
  public var backupLBA: UInt64

  public init(primaryError: GPTError, backupLBA: UInt64) {
    self.primaryError = primaryError
    self.backupLBA = backupLBA
  }

  /// The console warning, worded like edk2's: booting from the backup is not silent.
  public var description: String {
    "GPT: primary table corrupt (\(primaryError)); using the backup at LBA \(backupLBA)"
  }
}

/// A GUID partition table read from sector 1 (or the backup header at the last sector).
public struct GUIDPartitionTable {
  public var diskGUID: [UInt8]
  public var partitions: [GPTPartition]
  /// Set when the primary table was unusable and this one is the backup.
  public var fallback: GPTFallback? = nil

  /// The ESP type GUID (``EFIGUID/efiSystemPartition``) in its on-disk (mixed-endian) byte order.
  public static let efiSystemPartitionType: [UInt8] = EFIGUID.efiSystemPartition.bytes
  /// Linux filesystem data (``EFIGUID/linuxFilesystem``), on-disk order.
  public static let linuxFilesystemType: [UInt8] = EFIGUID.linuxFilesystem.bytes

  /// Reads the primary GPT, falling back to the backup header when the primary is damaged.
  public init<D: BlockDevice>(device: inout D) throws(GPTError) {
    do throws(GPTError) {
      self = try GUIDPartitionTable(device: &device, headerLBA: 1)
    } catch {
      guard device.sectorCount > 2 else { throw error }
      do throws(GPTError) {
        self = try GUIDPartitionTable(device: &device, headerLBA: device.sectorCount - 1)
        fallback = GPTFallback(primaryError: error, backupLBA: device.sectorCount - 1)
      } catch let backupError {
        // Report the primary header's problem unless the backup merely is missing too.
        throw backupError == .noSignature ? error : backupError
      }
    }
  }

  /// Reads and checks the header at `headerLBA` and its entry array.
  public init<D: BlockDevice>(device: inout D, headerLBA: UInt64) throws(GPTError) {
    let header: [UInt8]
    do throws(BlockDeviceError) { header = try device.readSectors(lba: headerLBA, count: 1) } catch { throw .device(error) }
    guard header.bytes(at: 0, length: 8) == ByteString.of("EFI PART") else { throw .noSignature }
    guard let headerSize = header.le32(at: 12), headerSize >= 92, headerSize <= 512,
          let storedCRC = header.le32(at: 16), let myLBA = header.le64(at: 24),
          let entriesLBA = header.le64(at: 72), let entryCount = header.le32(at: 80),
          let entrySize = header.le32(at: 84), let entriesCRC = header.le32(at: 88),
          let guid = header.bytes(at: 56, length: 16)
    else { throw .badHeaderSize }
    var check = Array(header[0..<Int(headerSize)])
    check.storeLE(0, at: 16, width: 4)
    guard CRC32.checksum(check) == storedCRC else { throw .headerChecksumMismatch }
    guard myLBA == headerLBA, entrySize >= 128, entrySize <= 4096, entrySize % 8 == 0, entryCount <= 16384
    else { throw .badEntryGeometry }
    let arrayBytes = Int(entrySize) * Int(entryCount)
    let sectors = (arrayBytes + 511) / 512
    guard entriesLBA < device.sectorCount, UInt64(sectors) <= device.sectorCount - entriesLBA
    else { throw .badEntryGeometry }
    let raw: [UInt8]
    do throws(BlockDeviceError) { raw = try device.readSectors(lba: entriesLBA, count: sectors) } catch { throw .device(error) }
    let array = Array(raw[0..<arrayBytes])
    guard CRC32.checksum(array) == entriesCRC else { throw .entriesChecksumMismatch }

    diskGUID = guid
    partitions = []
    for i in 0..<Int(entryCount) {
      let off = i * Int(entrySize)
      guard let type = array.bytes(at: off, length: 16), let unique = array.bytes(at: off + 16, length: 16),
            let first = array.le64(at: off + 32), let last = array.le64(at: off + 40),
            let attrs = array.le64(at: off + 48) else { throw .badEntryGeometry }
      if type.allSatisfy({ $0 == 0 }) { continue }
      guard first <= last, last < device.sectorCount else { throw .badEntryGeometry }
      partitions.append(GPTPartition(typeGUID: type, uniqueGUID: unique, firstLBA: first, lastLBA: last, attributes: attrs))
    }
  }

  /// The first EFI system partition.
  public func efiSystemPartition() throws(GPTError) -> GPTPartition {
    for p in partitions where p.isEFISystemPartition { return p }
    throw .noEFISystemPartition
  }
}

/// A window of a block device (a partition): sector numbers are relative to its start.
public struct PartitionBlockDevice<Base: BlockDevice>: BlockDevice {
  public var base: Base
  public let firstLBA: UInt64
  public let sectorCount: UInt64
  public init(base: Base, partition: GPTPartition) {
    self.base = base
    firstLBA = partition.firstLBA
    sectorCount = partition.sectorCount
  }
  public mutating func read(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
    let n = UInt64(buffer.count / 512)
    guard lba <= sectorCount, n <= sectorCount - lba else { throw .outOfRange }
    try base.read(lba: firstLBA + lba, into: buffer)
  }
}
