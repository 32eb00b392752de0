import FirmwareCore

/// A guest byte range, already split from the chain's descriptors.
public struct GuestSegment: Sendable, Equatable {
  public var address: UInt64
  public var length: UInt32

  public init(address: UInt64, length: UInt32) {
    self.address = address
    self.length = length
  }
}

/// One virtio-blk request, parsed from a descriptor chain without trusting its framing: the
/// 16-byte header is the first 16 device-readable bytes, the status is the last device-writable
/// byte, and the data is what lies between.
public struct BlockRequest: Sendable, Equatable {
  public var rawType: UInt32
  public var sector: UInt64
  /// Device-readable data after the header (write, discard, write zeroes).
  public var readable: [GuestSegment]
  /// Device-writable data before the status byte (read, get id).
  public var writable: [GuestSegment]
  /// Where the status byte goes.
  public var status: UInt64

  public var type: BlockRequestType? { BlockRequestType(rawValue: rawType) }
  public var readableLength: UInt64 { readable.reduce(0) { $0 + UInt64($1.length) } }
  public var writableLength: UInt64 { writable.reduce(0) { $0 + UInt64($1.length) } }

  public enum ParseError: Error, Equatable {
    /// No room for the status byte: nothing can be reported; the chain is returned with 0 bytes.
    case noStatus
    /// The header is short or outside RAM; `status` is where the error goes.
    case badHeader(status: UInt64)
    /// A device-readable buffer after a device-writable one.
    case badOrder(status: UInt64)
  }

  /// Parses `chain`, reading the header through `readHeader` (fills its buffer from a guest
  /// address; false if that is outside RAM). Allocates nothing for the header or for a direction
  /// with no data.
  public static func parse(
    _ descriptors: [VirtqDescriptor], readHeader: (UInt64, UnsafeMutableRawBufferPointer) -> Bool
  ) throws(ParseError) -> BlockRequest {
    // The status byte: the last byte of the last writable descriptor with any bytes.
    guard let lastWritable = descriptors.lastIndex(where: { $0.isWritable && $0.length > 0 }) else {
      throw .noStatus
    }
    let statusDescriptor = descriptors[lastWritable]
    let (statusAddress, overflow) = statusDescriptor.address.addingReportingOverflow(UInt64(statusDescriptor.length - 1))
    guard !overflow else { throw .noStatus }
    // Device-readable buffers come before device-writable ones.
    if let firstWritable = descriptors.firstIndex(where: { $0.isWritable && $0.length > 0 }),
      descriptors[firstWritable...].contains(where: { !$0.isWritable && $0.length > 0 }) {
      throw .badOrder(status: statusAddress)
    }

    var readable: [GuestSegment] = []
    var writable: [GuestSegment] = []
    // The header: the first 16 readable bytes, wherever the driver split them.
    var header: (UInt64, UInt64) = (0, 0)
    var headerBytes = 0
    for (index, descriptor) in descriptors.enumerated() where descriptor.length > 0 {
      if descriptor.isWritable {
        let length = index == lastWritable ? descriptor.length - 1 : descriptor.length
        if length > 0 { writable.append(GuestSegment(address: descriptor.address, length: length)) }
        continue
      }
      var segment = GuestSegment(address: descriptor.address, length: descriptor.length)
      if headerBytes < 16 {
        let take = min(16 - headerBytes, Int(segment.length))
        let filled = withUnsafeMutableBytes(of: &header) { bytes in
          readHeader(segment.address, UnsafeMutableRawBufferPointer(rebasing: bytes[headerBytes..<headerBytes + take]))
        }
        guard filled else { throw .badHeader(status: statusAddress) }
        headerBytes += take
        segment = GuestSegment(address: segment.address &+ UInt64(take), length: segment.length - UInt32(take))
      }
      if segment.length > 0 { readable.append(segment) }
    }
    guard headerBytes == 16 else { throw .badHeader(status: statusAddress) }
    return BlockRequest(
      rawType: UInt32(truncatingIfNeeded: UInt64(littleEndian: header.0)), sector: UInt64(littleEndian: header.1),
      readable: readable, writable: writable, status: statusAddress)
  }
}

/// One range of a discard or write-zeroes request (struct virtio_blk_discard_write_zeroes).
public struct BlockRange: Sendable, Equatable {
  public var sector: UInt64
  public var sectors: UInt32
  public var unmap: Bool

  public static let size = 16

  public init(bytes: ArraySlice<UInt8>) {
    sector = bytes.le64(at: 0) ?? 0
    sectors = bytes.le32(at: 8) ?? 0
    unmap = (bytes.le32(at: 12) ?? 0) & 1 != 0
  }
}
