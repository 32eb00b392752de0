/// Why bytes are not a device path.
public enum EFIDevicePathError: Error, Equatable {
  /// A node header (4 bytes) or a node's length runs past the end of the buffer, before any End node.
  case truncated(offset: Int)
  /// A node's length field is below the 4-byte header.
  case badNodeLength(offset: Int, length: UInt16)
  /// A node of a known type has a length its fields do not fit (a HardDrive node not 42 bytes, a
  /// FilePath of an odd length or without its NUL, …).
  case malformedNode(offset: Int)
}

/// One device path node (UEFI 2.10 §10.3) of the kinds the firmware builds and the boot loaders
/// read; any other node is kept as raw bytes.
public enum EFIDevicePathNode: Equatable, Sendable {
  /// Hardware PCI (1/1): the function and device of a PCI device on the bus of the node before it.
  case pci(function: UInt8, device: UInt8)
  /// Hardware memory-mapped (1/3): an EFI memory type and an inclusive address range (GRUB's kernel buffer).
  case memoryMapped(memoryType: UInt32, start: UInt64, end: UInt64)
  /// Hardware vendor (1/4): a GUID and vendor data.
  case hardwareVendor(EFIGUID, data: [UInt8])
  /// ACPI (2/1): _HID and _UID; PciRoot(n) is hid 0x0A0341D0 (EISA "PNP0A03"), uid n.
  case acpi(hid: UInt32, uid: UInt32)
  /// Media hard drive (4/1) for a GPT partition: 1-based partition number, first LBA and size in
  /// LBAs, the partition's unique GUID (MBRType 2, SignatureType 2).
  case hardDrive(partitionNumber: UInt32, startLBA: UInt64, sizeInLBAs: UInt64, partitionGUID: EFIGUID)
  /// Media vendor (4/3): a GUID and vendor data (LINUX_EFI_INITRD_MEDIA carries no data).
  case mediaVendor(EFIGUID, data: [UInt8])
  /// Media file path (4/4): UCS-2 code units without the terminating NUL, `\`-separated.
  case filePath([UInt16])
  /// End of this instance of a multi-instance path (0x7F/0x01).
  case endInstance
  /// Any other node: type, subtype and the bytes after the 4-byte header.
  case other(type: UInt8, subtype: UInt8, data: [UInt8])

  /// The EISA-encoded _HID of a PCI root bridge, "PNP0A03".
  public static let pciRootHID: UInt32 = 0x0A03_41D0
  /// PciRoot(`uid`).
  public static func pciRoot(_ uid: UInt32 = 0) -> EFIDevicePathNode { .acpi(hid: pciRootHID, uid: uid) }
  /// The vendor-media node the Linux EFI stub looks up to find the initrd's LoadFile2 protocol.
  public static let linuxInitrdMedia = EFIDevicePathNode.mediaVendor(.linuxInitrdMedia, data: [])

  /// A FilePath node for a FAT path ("/EFI/debian/shimaa64.efi" or with `\`): `/` becomes `\`,
  /// UTF-8 becomes UCS-2 (`ByteString.ucs2(fromUTF8:)`).
  public static func filePath(fatPath: [UInt8]) -> EFIDevicePathNode {
    .filePath(ByteString.ucs2(fromUTF8: fatPath).map { $0 == 0x2F ? 0x5C : $0 })
  }

  /// The FAT path of a FilePath node: `\` becomes `/`, UCS-2 becomes UTF-8; nil for other nodes.
  public var fatPath: [UInt8]? {
    guard case .filePath(let units) = self else { return nil }
    return FATVolume<MemoryBlockDevice>.utf8(fromUTF16: units.map { $0 == 0x5C ? 0x2F : $0 })
  }

  /// The node's bytes: type, subtype, 16-bit length, then its fields.
  public var bytes: [UInt8] {
    func node(_ type: UInt8, _ subtype: UInt8, _ data: [UInt8]) -> [UInt8] {
      [type, subtype] + UInt16(truncatingIfNeeded: 4 + data.count).littleEndianBytes + data
    }
    switch self {
    case .pci(let function, let device): return node(1, 1, [function, device])
    case .memoryMapped(let type, let start, let end):
      return node(1, 3, type.littleEndianBytes + start.littleEndianBytes + end.littleEndianBytes)
    case .hardwareVendor(let guid, let data): return node(1, 4, guid.bytes + data)
    case .acpi(let hid, let uid): return node(2, 1, hid.littleEndianBytes + uid.littleEndianBytes)
    case .hardDrive(let number, let start, let size, let guid):
      return node(4, 1, number.littleEndianBytes + start.littleEndianBytes + size.littleEndianBytes + guid.bytes + [2, 2])
    case .mediaVendor(let guid, let data): return node(4, 3, guid.bytes + data)
    case .filePath(let units):
      var data: [UInt8] = []
      for u in units + [0] { data.appendLE(UInt64(u), width: 2) }
      return node(4, 4, data)
    case .endInstance: return node(0x7F, 0x01, [])
    case .other(let type, let subtype, let data): return node(type, subtype, data)
    }
  }

  /// Decodes one node from its type, subtype and field bytes; a known kind whose fields do not fit
  /// its length is nil (the caller reports it).
  init?(type: UInt8, subtype: UInt8, data: [UInt8]) {
    switch (type, subtype) {
    case (1, 1):
      guard data.count == 2 else { return nil }
      self = .pci(function: data[0], device: data[1])
    case (1, 3):
      guard data.count == 20 else { return nil }
      self = .memoryMapped(memoryType: data.le32(at: 0)!, start: data.le64(at: 4)!, end: data.le64(at: 12)!)
    case (1, 4):
      guard let guid = EFIGUID(bytes: data) else { return nil }
      self = .hardwareVendor(guid, data: Array(data[16...]))
    case (2, 1):
      guard data.count == 8 else { return nil }
      self = .acpi(hid: data.le32(at: 0)!, uid: data.le32(at: 4)!)
    case (4, 1):
      guard data.count == 38 else { return nil }
      // MBR partitions (signature type 1) and others are kept as raw nodes.
      guard data[36] == 2, data[37] == 2 else { self = .other(type: type, subtype: subtype, data: data); return }
      self = .hardDrive(partitionNumber: data.le32(at: 0)!, startLBA: data.le64(at: 4)!,
                        sizeInLBAs: data.le64(at: 12)!, partitionGUID: EFIGUID(bytes: data, at: 20)!)
    case (4, 3):
      guard let guid = EFIGUID(bytes: data) else { return nil }
      self = .mediaVendor(guid, data: Array(data[16...]))
    case (4, 4):
      guard data.count >= 2, data.count % 2 == 0, data.le16(at: data.count - 2) == 0 else { return nil }
      var units: [UInt16] = []
      units.reserveCapacity(data.count / 2 - 1)
      var i = 0
      while i + 2 < data.count {
        let u = data.le16(at: i)!
        if u == 0 { break }  // some writers pad after the NUL
        units.append(u)
        i += 2
      }
      self = .filePath(units)
    case (0x7F, 0x01):
      guard data.isEmpty else { return nil }
      self = .endInstance
    default:
      self = .other(type: type, subtype: subtype, data: data)
    }
  }
}

/// A complete device path: nodes followed by the End node (0x7F/0xFF), as bytes.
public struct EFIDevicePath: Equatable, Sendable {
  /// The encoded path including its End node.
  public private(set) var bytes: [UInt8]

  /// The End-of-path node.
  static let end: [UInt8] = [0x7F, 0xFF, 4, 0]

  /// The path of `nodes` (none: just End).
  public init(nodes: [EFIDevicePathNode] = []) {
    bytes = []
    for n in nodes { bytes += n.bytes }
    bytes += Self.end
  }

  /// Reads the path at the start of `buffer` up to and including its End node; bytes after it are
  /// not part of the path. Every node must be at least 4 bytes and inside `buffer`, and the known
  /// kinds well formed.
  public init<C: RandomAccessCollection>(parsing buffer: C) throws(EFIDevicePathError) where C.Element == UInt8, C.Index == Int {
    var offset = 0
    while true {
      guard let type = buffer.byte(at: offset), let subtype = buffer.byte(at: offset + 1),
            let length = buffer.le16(at: offset + 2) else { throw .truncated(offset: offset) }
      guard length >= 4 else { throw .badNodeLength(offset: offset, length: length) }
      guard Int(length) <= buffer.count - offset else { throw .truncated(offset: offset) }
      if type == 0x7F && subtype == 0xFF {
        guard length == 4 else { throw .malformedNode(offset: offset) }
        let start = buffer.startIndex
        bytes = Array(buffer[start..<(start + offset)]) + Self.end
        return
      }
      let start = buffer.startIndex + offset
      guard EFIDevicePathNode(type: type, subtype: subtype, data: Array(buffer[(start + 4)..<(start + Int(length))])) != nil
      else { throw .malformedNode(offset: offset) }
      offset += Int(length)
    }
  }

  /// The nodes before End.
  public var nodes: [EFIDevicePathNode] {
    var result: [EFIDevicePathNode] = []
    var offset = 0
    // Checked when built or parsed: every length is valid and End is last.
    while offset < bytes.count - 4 {
      let length = Int(bytes.le16(at: offset + 2)!)
      if let node = EFIDevicePathNode(type: bytes[offset], subtype: bytes[offset + 1],
                                      data: Array(bytes[(offset + 4)..<(offset + length)])) {
        result.append(node)
      }
      offset += length
    }
    return result
  }

  /// The path with `node` added before End.
  public func appending(_ node: EFIDevicePathNode) -> EFIDevicePath {
    var path = self
    path.bytes.removeLast(4)
    path.bytes += node.bytes + Self.end
    return path
  }

  /// The path with `other`'s nodes added before End (a partition's path is its disk's plus HD(…)).
  public func appending(_ other: EFIDevicePath) -> EFIDevicePath {
    var path = self
    path.bytes.removeLast(4)
    path.bytes += other.bytes
    return path
  }

  /// The number of bytes of the nodes before End: what LocateDevicePath advances the caller's path by
  /// when this path is the matching prefix.
  public var nodeByteCount: Int { bytes.count - 4 }

  /// True when this path's nodes are, byte for byte, the first nodes of `other` (every path is a
  /// prefix of itself; End alone is a prefix of every path). LocateDevicePath picks the handle
  /// whose path is the longest such prefix.
  public func isPrefix(of other: EFIDevicePath) -> Bool {
    let n = nodeByteCount
    guard n <= other.nodeByteCount else { return false }
    // Equal bytes include equal node headers, so `other` has a node boundary at n as well.
    for i in 0..<n where bytes[i] != other.bytes[i] { return false }
    return true
  }

  /// The file path of the FilePath nodes, joined with `/` (a path may split its directories over
  /// several nodes), as a FAT path; nil when the path has none.
  public var fatPath: [UInt8]? {
    var path: [UInt8]? = nil
    for node in nodes {
      guard let part = node.fatPath else { continue }
      var joined = path ?? []
      if !joined.isEmpty, joined.last != 0x2F, part.first != 0x2F { joined.append(0x2F) }
      joined += part
      path = joined
    }
    return path
  }
}
