/// Why a block device read failed.
public enum BlockDeviceError: Error, Equatable {
  case outOfRange
  case ioError(UInt8)
  case timeout
}

/// A device read in 512-byte sectors (the firmware's virtio-blk driver; a byte array in tests).
public protocol BlockDevice {
  /// Number of 512-byte sectors.
  var sectorCount: UInt64 { get }
  /// Reads `buffer.count` bytes (a multiple of 512) starting at sector `lba` into `buffer`.
  mutating func read(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError)
}

extension BlockDevice {
  /// Reads `count` sectors at `lba` into a new array.
  public mutating func readSectors(lba: UInt64, count: Int) throws(BlockDeviceError) -> [UInt8] {
    guard count >= 0, count <= 1 << 16 else { throw .outOfRange }
    var bytes = [UInt8](repeating: 0, count: count * 512)
    var failure: BlockDeviceError? = nil
    bytes.withUnsafeMutableBytes { raw in
      do throws(BlockDeviceError) { try read(lba: lba, into: raw) } catch { failure = error }
    }
    if let failure { throw failure }
    return bytes
  }
}

/// An in-memory disk (tests, fuzzing).
public struct MemoryBlockDevice: BlockDevice {
  public var bytes: [UInt8]
  public init(bytes: [UInt8]) { self.bytes = bytes }
  public var sectorCount: UInt64 { UInt64(bytes.count / 512) }
  public mutating func read(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
    guard buffer.count % 512 == 0, lba <= sectorCount, UInt64(buffer.count / 512) <= sectorCount - lba
    else { throw .outOfRange }
    let start = Int(lba) * 512
    bytes.withUnsafeBytes { src in
      guard let s = src.baseAddress, let d = buffer.baseAddress else { return }
      d.copyMemory(from: s + start, byteCount: buffer.count)
    }
  }
}
