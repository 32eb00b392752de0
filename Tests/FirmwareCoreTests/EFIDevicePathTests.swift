import Testing
import FirmwareCore

/// GUIDs in UEFI's stored byte order and device paths as UEFI 2.10 §10.3 lays them out.
@Suite struct EFIDevicePathTests {
  static let partitionGUID = EFIGUID(0x01234567, 0x89ab, 0xcdef, (0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef))
  static let disk = EFIDevicePath(nodes: [.pciRoot(0), .pci(function: 0, device: 3)])
  static let partition = disk.appending(
    .hardDrive(partitionNumber: 1, startLBA: 2048, sizeInLBAs: 0x10_0000, partitionGUID: partitionGUID))
  static func utf16(_ s: String) -> [UInt16] { Array(s.utf16) }

  @Test func guidsUseTheMixedEndianStoredForm() {
    #expect(EFIGUID.loadedImage.bytes == [0xa1, 0x31, 0x1b, 0x5b, 0x62, 0x95, 0xd2, 0x11,
                                          0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b])
    #expect(EFIGUID.loadedImage.description == "5b1b31a1-9562-11d2-8e3f-00a0c969723b")
    #expect(EFIGUID.linuxInitrdMedia.description == "5568e427-68fc-4f3d-ac74-ca555231cc68")
    #expect(EFIGUID.shimLock.description == "605dab50-e046-4300-abb6-3dd810dd8b23")
    #expect(EFIGUID(bytes: EFIGUID.rng.bytes) == .rng)
    #expect(EFIGUID(bytes: [0, 1, 2] + EFIGUID.blockIO.bytes, at: 3) == .blockIO)
    #expect(EFIGUID(bytes: Array(EFIGUID.blockIO.bytes.dropLast())) == nil)
    #expect(EFIGUID.blockIO != .simpleFileSystem)
    // GPT keeps its on-disk constants; they now come from EFIGUID and must not have changed.
    #expect(GUIDPartitionTable.efiSystemPartitionType == [0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
                                                          0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B])
    #expect(GUIDPartitionTable.linuxFilesystemType == [0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47,
                                                       0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4])
  }

  @Test func nodesHaveTheSpecifiedLayout() {
    #expect(EFIDevicePath().bytes == [0x7F, 0xFF, 4, 0])
    #expect(EFIDevicePathNode.pci(function: 2, device: 5).bytes == [1, 1, 6, 0, 2, 5])
    #expect(EFIDevicePathNode.pciRoot(1).bytes == [2, 1, 12, 0, 0xD0, 0x41, 0x03, 0x0A, 1, 0, 0, 0])
    #expect(EFIDevicePathNode.linuxInitrdMedia.bytes == [4, 3, 20, 0, 0x27, 0xe4, 0x68, 0x55, 0xfc, 0x68, 0x3d, 0x4f,
                                                          0xac, 0x74, 0xca, 0x55, 0x52, 0x31, 0xcc, 0x68])
    let hd = EFIDevicePathNode.hardDrive(partitionNumber: 2, startLBA: 0x800, sizeInLBAs: 0x1000,
                                          partitionGUID: Self.partitionGUID).bytes
    #expect(hd.count == 42)
    #expect(Array(hd[0..<4]) == [4, 1, 42, 0])
    #expect(hd.le32(at: 4) == 2 && hd.le64(at: 8) == 0x800 && hd.le64(at: 16) == 0x1000)
    #expect(Array(hd[24..<40]) == Self.partitionGUID.bytes)
    #expect(hd[40] == 2 && hd[41] == 2)  // MBRType GPT, SignatureType GUID
    #expect(EFIDevicePathNode.filePath(Self.utf16("\\a")).bytes == [4, 4, 10, 0, 0x5C, 0, 0x61, 0, 0, 0])
    let mm = EFIDevicePathNode.memoryMapped(memoryType: 2, start: 0x4000_0000, end: 0x40FF_FFFF).bytes
    #expect(mm.count == 24 && mm.le64(at: 8) == 0x4000_0000 && mm.le64(at: 16) == 0x40FF_FFFF)
  }

  @Test func pathsRoundTripThroughTheirBytes() throws {
    let nodes: [EFIDevicePathNode] = [
      .pciRoot(0), .pci(function: 1, device: 2), .hardwareVendor(.rng, data: [9, 8, 7]),
      .hardDrive(partitionNumber: 1, startLBA: 34, sizeInLBAs: 1 << 40, partitionGUID: Self.partitionGUID),
      .filePath(Self.utf16("\\EFI\\debian")), .filePath(Self.utf16("shimaa64.efi")), .endInstance,
      .memoryMapped(memoryType: 1, start: 0x1000, end: 0x1FFF), .mediaVendor(.linuxInitrdMedia, data: []),
      .other(type: 3, subtype: 0x0B, data: Array(repeating: 0x42, count: 32)),  // messaging MAC
    ]
    let path = EFIDevicePath(nodes: nodes)
    let parsed = try EFIDevicePath(parsing: path.bytes + [0xDE, 0xAD])  // bytes after End are not the path's
    #expect(parsed == path)
    #expect(parsed.nodes == nodes)
    #expect(try EFIDevicePath(parsing: path.bytes[0...]).nodes == nodes)  // from a slice
    // An MBR HardDrive node stays raw, byte for byte.
    var mbr = EFIDevicePathNode.hardDrive(partitionNumber: 1, startLBA: 63, sizeInLBAs: 100, partitionGUID: Self.partitionGUID).bytes
    mbr[40] = 1; mbr[41] = 1
    let raw = try EFIDevicePath(parsing: mbr + [0x7F, 0xFF, 4, 0])
    #expect(raw.nodes == [.other(type: 4, subtype: 1, data: Array(mbr[4...]))])
  }

  @Test func malformedPathsAreRejected() {
    #expect(throws: EFIDevicePathError.truncated(offset: 0)) { try EFIDevicePath(parsing: [UInt8]()) }
    #expect(throws: EFIDevicePathError.truncated(offset: 0)) { try EFIDevicePath(parsing: [0x7F, 0xFF, 4]) }
    #expect(throws: EFIDevicePathError.badNodeLength(offset: 0, length: 3)) { try EFIDevicePath(parsing: [1, 1, 3, 0, 0x7F, 0xFF, 4, 0]) }
    #expect(throws: EFIDevicePathError.badNodeLength(offset: 6, length: 0)) {
      try EFIDevicePath(parsing: [1, 1, 6, 0, 0, 0, 4, 4, 0, 0, 0, 0])
    }
    #expect(throws: EFIDevicePathError.truncated(offset: 0)) { try EFIDevicePath(parsing: [1, 1, 0x20, 0, 0, 0, 0x7F, 0xFF, 4, 0]) }
    // No End node: the walk stops at the buffer's end.
    #expect(throws: EFIDevicePathError.truncated(offset: 6)) { try EFIDevicePath(parsing: [1, 1, 6, 0, 0, 0]) }
    // Known kinds with the wrong length for their fields.
    #expect(throws: EFIDevicePathError.malformedNode(offset: 0)) { try EFIDevicePath(parsing: [1, 1, 5, 0, 0, 0x7F, 0xFF, 4, 0]) }
    let hd = Self.partition.bytes
    var short = Array(hd[0..<18]) + Array(hd[18..<58])   // disk (18 bytes) + HD's first 40 bytes
    short[20] = 40
    #expect(throws: EFIDevicePathError.malformedNode(offset: 18)) { try EFIDevicePath(parsing: short + [0x7F, 0xFF, 4, 0]) }
    #expect(throws: EFIDevicePathError.malformedNode(offset: 0)) { try EFIDevicePath(parsing: [4, 4, 7, 0, 0x41, 0, 0, 0x7F, 0xFF, 4, 0]) }
    #expect(throws: EFIDevicePathError.malformedNode(offset: 0)) { try EFIDevicePath(parsing: [4, 4, 8, 0, 0x41, 0, 0x42, 0, 0x7F, 0xFF, 4, 0]) }
    #expect(throws: EFIDevicePathError.malformedNode(offset: 0)) { try EFIDevicePath(parsing: [4, 3, 8, 0, 1, 2, 3, 4, 0x7F, 0xFF, 4, 0]) }
    #expect(throws: EFIDevicePathError.malformedNode(offset: 0)) { try EFIDevicePath(parsing: [0x7F, 0xFF, 5, 0, 0]) }
    #expect(EFIDevicePathError.badNodeLength(offset: 6, length: 0).description == "device path node at offset 6 has length 0 (< 4)")
  }

  @Test func prefixMatchingIsByWholeNodes() throws {
    let file = Self.partition.appending(.filePath(Self.utf16("\\EFI\\BOOT\\BOOTAA64.EFI")))
    #expect(Self.disk.isPrefix(of: Self.partition))
    #expect(Self.partition.isPrefix(of: file))
    #expect(Self.disk.isPrefix(of: file))
    #expect(file.isPrefix(of: file))
    #expect(EFIDevicePath().isPrefix(of: file))
    #expect(!Self.partition.isPrefix(of: Self.disk))
    #expect(!file.isPrefix(of: Self.partition))
    let otherDisk = EFIDevicePath(nodes: [.pciRoot(0), .pci(function: 0, device: 4)])
    #expect(!otherDisk.isPrefix(of: file))
    #expect(Self.partition.nodeByteCount == 12 + 6 + 42)
    #expect(Self.disk.appending(EFIDevicePath(nodes: [.hardDrive(partitionNumber: 1, startLBA: 2048, sizeInLBAs: 0x10_0000,
                                                                  partitionGUID: Self.partitionGUID)])) == Self.partition)
  }

  @Test func filePathsConvertToAndFromFATPaths() throws {
    let node = EFIDevicePathNode.filePath(fatPath: Array("/EFI/debian/shimaa64.efi".utf8))
    #expect(node == .filePath(Self.utf16("\\EFI\\debian\\shimaa64.efi")))
    #expect(node.fatPath == Array("/EFI/debian/shimaa64.efi".utf8))
    #expect(EFIDevicePathNode.filePath(fatPath: Array("\\loader\\entries".utf8)) == .filePath(Self.utf16("\\loader\\entries")))
    let accented = Array("/café/naïve€.conf".utf8)
    #expect(EFIDevicePathNode.filePath(fatPath: accented) == .filePath(Self.utf16("\\café\\naïve€.conf")))
    #expect(EFIDevicePathNode.filePath(fatPath: accented).fatPath == accented)
    // Outside UCS-2 and invalid UTF-8: U+FFFD.
    #expect(EFIDevicePathNode.filePath(fatPath: Array("a😀b".utf8)) == .filePath([0x61, 0xFFFD, 0x62]))
    #expect(EFIDevicePathNode.filePath(fatPath: [0x61, 0xC3]) == .filePath([0x61, 0xFFFD]))
    #expect(EFIDevicePathNode.filePath(fatPath: [0xE2, 0x41]) == .filePath([0xFFFD, 0x41]))
    #expect(EFIDevicePathNode.pci(function: 0, device: 0).fatPath == nil)
    // A path whose directory and file name are separate nodes.
    let split = Self.partition.appending(.filePath(Self.utf16("\\EFI\\debian"))).appending(.filePath(Self.utf16("grubaa64.efi")))
    #expect(try EFIDevicePath(parsing: split.bytes).fatPath == Array("/EFI/debian/grubaa64.efi".utf8))
    #expect(Self.partition.fatPath == nil)
  }
}
