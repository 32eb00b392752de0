import FirmwareSupport
import FirmwareCore

// Block IO and Disk IO on every disk and GPT partition, and the Simple File System (read-only) on
// FAT partitions: GRUB reads whole disks, shim and systemd-boot read files (UEFI 2.10 §13.4,
// §13.7, §13.9).

/// One virtio-blk disk, shared by everything that reads it: the driver keeps the queue's
/// state, so there must be exactly one of it.
final class EFIDisk {
  var device: VirtioBlockDevice
  /// PciRoot(0)/Pci(device, function).
  let path: EFIDevicePath
  /// "00:dd.f", for messages.
  let name: String
  init(device: VirtioBlockDevice, pciDevice: UInt32, pciFunction: UInt32) {
    self.device = device
    path = EFIDevicePath(nodes: [.pciRoot(), .pci(function: UInt8(truncatingIfNeeded: pciFunction),
                                                  device: UInt8(truncatingIfNeeded: pciDevice))])
    name = "00:" + (pciDevice < 10 ? "0" : "") + "\(pciDevice).\(pciFunction)"
  }
}

/// A BlockDevice view of a shared disk (for FATVolume and PartitionBlockDevice).
struct EFIDiskReader: BlockDevice {
  let disk: EFIDisk
  var sectorCount: UInt64 { disk.device.sectorCount }
  mutating func read(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
    try disk.device.read(lba: lba, into: buffer)
  }
}

typealias EFIVolume = FATVolume<PartitionBlockDevice<EFIDiskReader>>

/// A Block IO instance: a whole disk or one partition of it.
struct EFIBlockDevice {
  var disk: EFIDisk
  var firstLBA: UInt64
  var blocks: UInt64
}

/// An open file or directory of a volume.
struct EFIOpenFile {
  var id: UInt64
  var volume: Int
  /// Absolute FAT path ("/" for the root).
  var path: [UInt8]
  var entry: FATDirectoryEntry?
  var position: UInt64 = 0
  /// A file's bytes, read whole at Open (pages the firmware frees at Close).
  var contents: UInt64 = 0
  var contentPages: UInt64 = 0
  /// A directory's entries, read at Open, walked by Read.
  var listing: [FATDirectoryEntry] = []
  var protocolAddress: UInt64 = 0
  var isDirectory: Bool { entry?.isDirectory ?? true }
}

/// Read-ahead for Block IO. Boot loaders read files a few blocks at a time (GRUB reads a kernel
/// from ext4 in blocks), and under emulation each device request costs far more than its bytes:
/// a read that misses fills a window, which doubles while the reads stay sequential.
struct EFIReadAhead {
  /// The window's memory (`maximumSectors` sectors), nil until the environment gives it some.
  var buffer: UnsafeMutableRawPointer? = nil
  static let maximumSectors: UInt64 = 8192  // 4 MiB
  static let firstSectors: UInt64 = 256     // 128 KiB
  var disk: EFIDisk? = nil
  var lba: UInt64 = 0
  var sectors: UInt64 = 0
  /// Where the last request ended, to see a sequential reader.
  var lastEnd: UInt64 = 0

  /// Reads `count` sectors at `lba` of `disk` into `destination`, through the window when that
  /// pays; direct for reads as large as the window.
  mutating func read(_ disk: EFIDisk, lba: UInt64, count: UInt64,
                     into destination: UnsafeMutableRawPointer) throws(BlockDeviceError) {
    defer { lastEnd = lba + count }
    let hit = self.disk === disk && lba >= self.lba && lba + count <= self.lba + sectors
    if !hit {
      guard let buffer, count < EFIReadAhead.maximumSectors else {
        try disk.device.read(lba: lba, into: UnsafeMutableRawBufferPointer(start: destination, count: Int(count * 512)))
        return
      }
      let sequential = self.disk === disk && lba == lastEnd
      var window = sequential ? min(max(sectors * 2, EFIReadAhead.firstSectors), EFIReadAhead.maximumSectors)
                              : EFIReadAhead.firstSectors
      window = min(max(window, count), disk.device.sectorCount - lba)
      self.disk = nil  // invalid until the read succeeds
      try disk.device.read(lba: lba, into: UnsafeMutableRawBufferPointer(start: buffer, count: Int(window * 512)))
      self.disk = disk
      self.lba = lba
      sectors = window
    }
    destination.copyMemory(from: buffer! + Int((lba - self.lba) * 512), byteCount: Int(count * 512))
  }
}

struct EFIStorage {
  var readAhead = EFIReadAhead()
  /// One block, for Disk IO's partial first and last blocks.
  let bounce = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
  var blockDevices: [EFIBlockDevice] = []
  var volumes: [EFIVolume] = []
  var files: [EFIOpenFile] = []
  var nextFileID: UInt64 = 1
}

extension EFIEnvironment {
  /// Installs Block IO, Disk IO and a device path for `disk` and each of its GPT partitions, and the
  /// Simple File System on its FAT ones. Returns each partition's handle and volume, in table order.
  mutating func installDisk(_ disk: EFIDisk) throws(EFIStatus) -> [(partition: GPTPartition, handle: EFIHandle, volume: Int?)] {
    let sectors = disk.device.sectorCount
    _ = try installBlockIO(EFIBlockDevice(disk: disk, firstLBA: 0, blocks: sectors), path: disk.path, partition: false)
    var reader = EFIDiskReader(disk: disk)
    guard let gpt = try? GUIDPartitionTable(device: &reader) else { return [] }
    var result: [(partition: GPTPartition, handle: EFIHandle, volume: Int?)] = []
    for (n, p) in gpt.partitions.enumerated() where p.lastLBA < sectors && p.firstLBA <= p.lastLBA {
      let path = disk.path.appending(.hardDrive(
        partitionNumber: UInt32(n + 1), startLBA: p.firstLBA, sizeInLBAs: p.sectorCount,
        partitionGUID: EFIGUID(bytes: p.uniqueGUID) ?? EFIGUID(0, 0, 0, (0, 0, 0, 0, 0, 0, 0, 0))))
      let handle = try installBlockIO(EFIBlockDevice(disk: disk, firstLBA: p.firstLBA, blocks: p.sectorCount),
                                      path: path, partition: true)
      var volumeIndex: Int? = nil
      if let volume = try? EFIVolume(device: PartitionBlockDevice(base: EFIDiskReader(disk: disk), partition: p)) {
        volumeIndex = storage.volumes.count
        storage.volumes.append(volume)
        let fs = try pool.allocate(type: .bootServicesData, size: MemoryLayout<fw_efi_simple_file_system>.size, in: &memory)
        fw_efi_simple_file_system_init(pointer(fs)!.assumingMemoryBound(to: fw_efi_simple_file_system.self),
                                       UInt64(storage.volumes.count - 1))
        try handles.install([EFIProtocolInterface(guid: .simpleFileSystem, interface: fs)], on: handle)
      }
      result.append((partition: p, handle: handle, volume: volumeIndex))
    }
    return result
  }

  private mutating func installBlockIO(_ device: EFIBlockDevice, path: EFIDevicePath, partition: Bool) throws(EFIStatus) -> EFIHandle {
    storage.blockDevices.append(device)
    let a = try pool.allocate(type: .bootServicesData, size: MemoryLayout<fw_efi_block_io>.size, in: &memory)
    let io = pointer(a)!.assumingMemoryBound(to: fw_efi_block_io.self)
    fw_efi_block_io_init(io, UInt64(storage.blockDevices.count - 1))
    io.pointee.media_storage.media_id = 0
    io.pointee.media_storage.media_present = 1
    io.pointee.media_storage.logical_partition = partition ? 1 : 0
    io.pointee.media_storage.read_only = 1
    io.pointee.media_storage.block_size = 512
    io.pointee.media_storage.io_align = 1
    io.pointee.media_storage.last_block = device.blocks &- 1
    io.pointee.media_storage.logical_blocks_per_physical_block = 1
    // Disk IO over the same device, as edk2's DiskIoDxe puts on every Block IO handle.
    let d = try pool.allocate(type: .bootServicesData, size: MemoryLayout<fw_efi_disk_io>.size, in: &memory)
    fw_efi_disk_io_init(pointer(d)!.assumingMemoryBound(to: fw_efi_disk_io.self), UInt64(storage.blockDevices.count - 1))
    return try handles.install([EFIProtocolInterface(guid: .blockIO, interface: a),
                                EFIProtocolInterface(guid: .diskIO, interface: d),
                                EFIProtocolInterface(guid: .devicePath, interface: try poolCopy(path.bytes))])
  }

  /// Opens `path` (absolute FAT path) on `volume` and returns the File protocol's address.
  mutating func openFile(volume: Int, path: [UInt8]) throws(EFIStatus) -> UInt64 {
    guard volume < storage.volumes.count, storage.files.count < 256 else { throw .outOfResources }
    var file = EFIOpenFile(id: storage.nextFileID, volume: volume, path: path, entry: nil)
    do throws(FATError) {
      if path.contains(where: { $0 != 0x2F }) { file.entry = try storage.volumes[volume].lookup(path) }
      if file.isDirectory {
        file.listing = try storage.volumes[volume].entries(of: file.entry).filter { $0.name != [0x2E] && $0.name != [0x2E, 0x2E] }
      }
    } catch { throw EFIEnvironment.status(error) }
    if !file.isDirectory, let entry = file.entry {
      let pages = max((UInt64(entry.size) + EFIMemoryMap.pageSize - 1) / EFIMemoryMap.pageSize, 1)
      let buffer = try memory.allocatePages(.anyPages, type: .bootServicesData, pages: pages)
      do throws(FATError) {
        try storage.volumes[volume].readFile(entry, into: UnsafeMutableRawBufferPointer(start: pointer(buffer), count: Int(entry.size)))
      } catch {
        try? memory.freePages(at: buffer, pages: pages)
        throw EFIEnvironment.status(error)
      }
      file.contents = buffer
      file.contentPages = pages
    }
    let a = try pool.allocate(type: .bootServicesData, size: MemoryLayout<fw_efi_file>.size, in: &memory)
    fw_efi_file_init(pointer(a)!.assumingMemoryBound(to: fw_efi_file.self), file.id)
    file.protocolAddress = a
    storage.nextFileID += 1
    storage.files.append(file)
    return a
  }

  /// What a file-system failure means to a caller.
  static func status(_ error: FATError) -> EFIStatus {
    switch error {
    case .notFound, .notADirectory: return .notFound
    case .device: return .deviceError
    default: return .volumeCorrupted
    }
  }

  func fileIndex(_ this: RawPointer?) throws(EFIStatus) -> Int {
    guard let this else { throw .invalidParameter }
    let id = this.assumingMemoryBound(to: fw_efi_file.self).pointee.id
    guard let i = storage.files.firstIndex(where: { $0.id == id && $0.protocolAddress == address(this) }) else {
      throw .invalidParameter
    }
    return i
  }

  mutating func closeFile(_ i: Int) {
    let file = storage.files.remove(at: i)
    if file.contentPages > 0 { try? memory.freePages(at: file.contents, pages: file.contentPages) }
    try? pool.free(file.protocolAddress, in: &memory)
  }
}

/// Resolves `utf8` (a `/`-separated path, absolute or relative to `base`) to an absolute FAT
/// path, with "." and ".." applied.
func resolvePath(_ utf8: [UInt8], from base: [UInt8]) -> [UInt8] {
  var components: [[UInt8]] = utf8.first == 0x2F ? [] : base.split(separator: 0x2F).map { Array($0) }
  for part in utf8.split(separator: 0x2F) {
    if part.elementsEqual([0x2E]) { continue }
    if part.elementsEqual([0x2E, 0x2E]) { _ = components.popLast(); continue }
    components.append(Array(part))
  }
  var path: [UInt8] = [0x2F]
  for (i, c) in components.enumerated() { path += (i > 0 ? [0x2F] : []) + c }
  return path
}

/// EFI_FILE_INFO for `entry` (the root when nil): 80 bytes, then the NUL-terminated UCS-2 name.
func fileInfo(_ entry: FATDirectoryEntry?) -> [UInt8] {
  // A FAT name has no "/", so the FilePath node's UTF-8 → UCS-2 conversion is the name's.
  var name: [UInt16] = []
  if case .filePath(let units) = EFIDevicePathNode.filePath(fatPath: entry?.name ?? []) { name = units }
  let size = UInt64(80 + (name.count + 1) * 2)
  var info: [UInt8] = []
  info.reserveCapacity(Int(size))
  info += size.littleEndianBytes
  info += UInt64(entry?.size ?? 0).littleEndianBytes
  info += ((UInt64(entry?.size ?? 0) + 4095) & ~4095).littleEndianBytes
  info += [UInt8](repeating: 0, count: 48)  // create, access and modification times: unknown
  let attribute: UInt64 = ((entry?.isDirectory ?? true) ? 0x10 : 0) | 0x1  // DIRECTORY, READ_ONLY
  info += attribute.littleEndianBytes
  for c in name + [0] { info += c.littleEndianBytes }
  return info
}

/// Copies `bytes` to a caller's buffer of `size` bytes, or says how many it needs.
func copyOut(_ bytes: [UInt8], _ size: Out<UInt64>?, _ buffer: RawPointer?) throws(EFIStatus) {
  guard let size else { throw .invalidParameter }
  guard size.pointee >= UInt64(bytes.count) else {
    size.pointee = UInt64(bytes.count)
    throw .bufferTooSmall
  }
  guard let buffer else { throw .invalidParameter }
  bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
  size.pointee = UInt64(bytes.count)
}

// MARK: Simple File System and File

@_cdecl("efi_open_volume")
func efiOpenVolume(_ this: RawPointer?, _ root: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let this, let root else { throw .invalidParameter }
    let volume = this.assumingMemoryBound(to: fw_efi_simple_file_system.self).pointee.id
    root.pointee = try env.openFile(volume: Int(volume), path: [0x2F])
  }
}

@_cdecl("efi_file_open")
func efiFileOpen(_ this: RawPointer?, _ new: Out<UInt64>?, _ name: UnsafePointer<UInt16>?, _ mode: UInt64,
                 _ attributes: UInt64) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let new else { throw .invalidParameter }
    let i = try env.fileIndex(this)
    // A read-only volume: writing or creating is refused as the specification says.
    guard mode & 0x2 == 0, mode & 0x8000_0000_0000_0000 == 0 else { throw .writeProtected }
    guard let utf8 = EFIDevicePathNode.filePath(try ucs2String(name)).fatPath else { throw .notFound }
    let path = resolvePath(utf8, from: env.storage.files[i].path)
    new.pointee = try env.openFile(volume: env.storage.files[i].volume, path: path)
  }
}

@_cdecl("efi_file_open_ex")
func efiFileOpenEx(_ this: RawPointer?, _ new: Out<UInt64>?, _ name: UnsafePointer<UInt16>?, _ mode: UInt64,
                   _ attributes: UInt64, _ token: RawPointer?) -> UInt64 {
  efiFileOpen(this, new, name, mode, attributes)
}

@_cdecl("efi_file_close")
func efiFileClose(_ this: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in env.closeFile(try env.fileIndex(this)) }
}

@_cdecl("efi_file_delete")
func efiFileDelete(_ this: RawPointer?) -> UInt64 {
  let closed = efiFileClose(this)
  return closed == EFIStatus.success.rawValue ? 2 : closed  // EFI_WARN_DELETE_FAILURE: read-only
}

@_cdecl("efi_file_read")
func efiFileRead(_ this: RawPointer?, _ size: Out<UInt64>?, _ buffer: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    let i = try env.fileIndex(this)
    guard let size else { throw .invalidParameter }
    var file = env.storage.files[i]
    if file.isDirectory {
      // One EFI_FILE_INFO per call; size 0 at the end.
      guard file.position < UInt64(file.listing.count) else {
        size.pointee = 0
        return
      }
      try copyOut(fileInfo(file.listing[Int(file.position)]), size, buffer)
      file.position += 1
    } else {
      let total = UInt64(file.entry?.size ?? 0)
      guard file.position <= total else { throw .deviceError }  // read past a SetPosition beyond the end
      let n = min(size.pointee, total - file.position)
      if n > 0 {
        guard let buffer else { throw .invalidParameter }
        buffer.copyMemory(from: pointer(file.contents + file.position)!, byteCount: Int(n))
      }
      file.position += n
      size.pointee = n
    }
    env.storage.files[i] = file
  }
}

@_cdecl("efi_file_read_ex")
func efiFileReadEx(_ this: RawPointer?, _ token: RawPointer?) -> UInt64 { EFIStatus.unsupported.rawValue }
@_cdecl("efi_file_write")
func efiFileWrite(_ this: RawPointer?, _ size: Out<UInt64>?, _ buffer: RawPointer?) -> UInt64 {
  EFIStatus.writeProtected.rawValue
}
@_cdecl("efi_file_write_ex")
func efiFileWriteEx(_ this: RawPointer?, _ token: RawPointer?) -> UInt64 { EFIStatus.writeProtected.rawValue }
@_cdecl("efi_file_flush") func efiFileFlush(_ this: RawPointer?) -> UInt64 { EFIStatus.success.rawValue }
@_cdecl("efi_file_flush_ex")
func efiFileFlushEx(_ this: RawPointer?, _ token: RawPointer?) -> UInt64 { EFIStatus.success.rawValue }
@_cdecl("efi_file_set_info")
func efiFileSetInfo(_ this: RawPointer?, _ type: RawPointer?, _ size: UInt64, _ buffer: RawPointer?) -> UInt64 {
  EFIStatus.writeProtected.rawValue
}

@_cdecl("efi_file_get_position")
func efiFileGetPosition(_ this: RawPointer?, _ position: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    let i = try env.fileIndex(this)
    guard let position else { throw .invalidParameter }
    guard !env.storage.files[i].isDirectory else { throw .unsupported }
    position.pointee = env.storage.files[i].position
  }
}

@_cdecl("efi_file_set_position")
func efiFileSetPosition(_ this: RawPointer?, _ position: UInt64) -> UInt64 {
  efiService { env throws(EFIStatus) in
    let i = try env.fileIndex(this)
    if env.storage.files[i].isDirectory {
      guard position == 0 else { throw .unsupported }  // only a rewind
      env.storage.files[i].position = 0
    } else {
      // All ones: the end of the file (shim sizes files so).
      env.storage.files[i].position = position == .max ? UInt64(env.storage.files[i].entry?.size ?? 0) : position
    }
  }
}

@_cdecl("efi_file_get_info")
func efiFileGetInfo(_ this: RawPointer?, _ type: RawPointer?, _ size: Out<UInt64>?, _ buffer: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    let i = try env.fileIndex(this)
    let kind = try guid(type)
    if kind == .fileInfo {
      try copyOut(fileInfo(env.storage.files[i].entry), size, buffer)
    } else if kind == EFIEnvironment.fileSystemInfo {
      // EFI_FILE_SYSTEM_INFO: size, read-only, volume size, free space, block size, empty label.
      let volume = env.storage.volumes[env.storage.files[i].volume]
      var info: [UInt8] = UInt64(40).littleEndianBytes + [1] + [UInt8](repeating: 0, count: 7)
      info += (volume.device.sectorCount * 512).littleEndianBytes + UInt64(0).littleEndianBytes
      info += UInt32(volume.clusterSize).littleEndianBytes + [0, 0, 0, 0]
      try copyOut(info, size, buffer)
    } else {
      throw .unsupported
    }
  }
}

extension EFIEnvironment {
  /// EFI_FILE_SYSTEM_INFO_ID 09576e93-6d3f-11d2-8e39-00a0c969723b.
  static let fileSystemInfo = EFIGUID(0x0957_6e93, 0x6d3f, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
}

// MARK: Block IO

extension EFIStorage {
  /// The Block IO instance a Block IO or Disk IO protocol structure names (its `id`), for a
  /// caller's MediaId (always 0: the media never change).
  func blockDevice(_ id: UInt64?, mediaID: UInt32) throws(EFIStatus) -> EFIBlockDevice {
    guard let id, id < UInt64(blockDevices.count) else { throw .invalidParameter }
    guard mediaID == 0 else { throw .mediaChanged }
    return blockDevices[Int(id)]
  }
}

@_cdecl("efi_block_io_read_blocks")
func efiBlockIOReadBlocks(_ this: RawPointer?, _ mediaID: UInt32, _ lba: UInt64, _ size: UInt64, _ buffer: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    let device = try env.storage.blockDevice(this?.assumingMemoryBound(to: fw_efi_block_io.self).pointee.id, mediaID: mediaID)
    guard size % 512 == 0 else { throw .badBufferSize }
    let count = size / 512
    guard lba <= device.blocks, count <= device.blocks - lba else { throw .invalidParameter }
    guard count > 0 else { return }
    guard let buffer else { throw .invalidParameter }
    do throws(BlockDeviceError) {
      try env.storage.readAhead.read(device.disk, lba: device.firstLBA + lba, count: count, into: buffer)
    } catch { throw .deviceError }
  }
}

@_cdecl("efi_block_io_write_blocks")
func efiBlockIOWriteBlocks(_ this: RawPointer?, _ mediaID: UInt32, _ lba: UInt64, _ size: UInt64, _ buffer: RawPointer?) -> UInt64 {
  EFIStatus.writeProtected.rawValue
}
@_cdecl("efi_block_io_reset")
func efiBlockIOReset(_ this: RawPointer?, _ extended: UInt8) -> UInt64 { EFIStatus.success.rawValue }
@_cdecl("efi_block_io_flush_blocks")
func efiBlockIOFlushBlocks(_ this: RawPointer?) -> UInt64 { EFIStatus.success.rawValue }

// MARK: Disk IO

@_cdecl("efi_disk_io_read_disk")
func efiDiskIOReadDisk(_ this: RawPointer?, _ mediaID: UInt32, _ offset: UInt64, _ size: UInt64, _ buffer: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    let device = try env.storage.blockDevice(this?.assumingMemoryBound(to: fw_efi_disk_io.self).pointee.id, mediaID: mediaID)
    let range: DiskIORange
    do throws(DiskIORangeError) {
      range = try DiskIORange(offset: offset, length: size, blockSize: 512, mediaBlocks: device.blocks)
    } catch { throw .invalidParameter }
    guard !range.isEmpty else { return }
    guard let buffer else { throw .invalidParameter }
    do throws(BlockDeviceError) {
      if let whole = range.whole {
        try env.storage.readAhead.read(device.disk, lba: device.firstLBA + whole.lba, count: whole.blocks,
                                       into: buffer + Int(whole.bufferOffset))
      }
      for case let part? in [range.head, range.tail] {
        try env.storage.readAhead.read(device.disk, lba: device.firstLBA + part.lba, count: 1, into: env.storage.bounce)
        (buffer + Int(part.bufferOffset)).copyMemory(from: env.storage.bounce + Int(part.offsetInBlock),
                                                     byteCount: Int(part.count))
      }
    } catch { throw .deviceError }
  }
}

@_cdecl("efi_disk_io_write_disk")
func efiDiskIOWriteDisk(_ this: RawPointer?, _ mediaID: UInt32, _ offset: UInt64, _ size: UInt64, _ buffer: RawPointer?) -> UInt64 {
  EFIStatus.writeProtected.rawValue
}
