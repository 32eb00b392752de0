import FirmwareSupport
import FirmwareCore

/// What `KernelLoader.boot` placed in RAM, for the steps before entry (measurement, clean-up).
struct LoadedBoot {
  var layout: BootLayout
  /// Where the kernel file's bytes are, as read from the disk: `layout.kernel` for a plain Image,
  /// the compressed-file buffer for gzip and zboot (what REM1 measures: the file, as edk2 does).
  var kernelFileAddress: UInt64
  var kernelFileSize: Int
  /// The command line written to /chosen/bootargs (no terminator).
  var commandLine: [UInt8]

  /// The kernel file as read from the disk.
  var kernel: UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(kernelFileAddress)), count: kernelFileSize)
  }
  /// All initrds, concatenated as loaded (empty when there is none).
  var initrd: UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(layout.initrd)), count: Int(layout.initrdSize))
  }
}

/// A compressed kernel file read into the compressed-file buffer: a gzip member unpacked later,
/// straight into the kernel's place, or a zstd zboot payload already unpacked below the file
/// (zstd has no way to unpack only the header the layout needs).
struct CompressedKernel {
  /// Where the whole file was read (the top of RAM, see `BootLayout.compressedKernelBuffer`).
  var fileAddress: UInt64
  /// The lowest address the buffer uses (the unpacked zstd payload's, else the file's): the boot
  /// layout stays below it.
  var regionStart: UInt64
  /// The compressed data: the whole file, or a zboot image's payload.
  var payload: UnsafeRawBufferPointer
  /// The zstd payload unpacked (nil for gzip, which unpacks into place).
  var unpacked: UnsafeRawBufferPointer?
  var unpackedSize: Int
  /// The header of the Image inside (from its first 64 bytes).
  var header: ArmImageHeader
  /// "gzip", "EFI zboot (gzip)" or "EFI zboot (zstd)", for messages.
  var kind: String
}

/// GPT → first FAT ESP → BLS default entry → kernel + initrds + command line → Linux.
struct KernelLoader {
  var tree: DeviceTree
  let platform: PlatformDescription
  let bootCounter: UInt64

  /// Loads the default entry from `disk` and enters the kernel; `beforeEntry` runs last
  /// (device reset, Realm clean-up). Returns only by throwing, before anything is irreversible:
  /// the boot manager then tries the next disk.
  mutating func boot(disk: EFIDisk, beforeEntry: (LoadedBoot) -> Void) throws(BootFailure) -> Never {
    // Reads go through the disk itself (not a copy of its queue state): a failed attempt leaves
    // the queue where the next one, on any path, goes on from.
    var device = EFIDiskReader(disk: disk)
    let gpt: GUIDPartitionTable
    let esp: GPTPartition
    do throws(GPTError) {
      gpt = try GUIDPartitionTable(device: &device)
      esp = try gpt.efiSystemPartition()
    } catch { throw BootFailure("partition table: \(error)") }
    if let fallback = gpt.fallback { log("warning: \(fallback)") }
    var fat: EFIVolume
    do throws(FATError) {
      fat = try EFIVolume(device: PartitionBlockDevice(base: device, partition: esp))
    } catch { throw BootFailure("EFI system partition: \(error)") }

    let entry = try KernelLoader.chooseEntry(&fat, requested: platform.bootEntry)
    let kernelFile: FATDirectoryEntry
    var initrdFiles: [FATDirectoryEntry] = []
    do throws(FATError) {
      kernelFile = try fat.lookup(entry.linux)
      for path in entry.initrds { initrdFiles.append(try fat.lookup(path)) }
    } catch { throw BootFailure("\(ByteString.string(entry.linux)) or an initrd: \(error)") }
    var initrdSize: UInt64 = 0
    for f in initrdFiles { initrdSize += UInt64(f.size) }

    // Kernel format and header from the first cluster; a compressed kernel is read whole first.
    let kernelName = ByteString.string(entry.linux)
    let fileSize = UInt64(kernelFile.size)
    let head: [UInt8]
    do throws(FATError) { head = try fat.readFirstCluster(of: kernelFile) } catch { throw BootFailure("reading the kernel: \(error)") }
    let format: KernelFormat
    do throws(KernelFormatError) { format = try KernelFormat.detect(head, fileSize: fileSize) } catch {
      throw BootFailure("kernel \(kernelName): \(error)")
    }
    var compressed: CompressedKernel? = nil
    let header: ArmImageHeader
    switch format {
    case .image:
      do throws(KernelImageError) { header = try ArmImageHeader(bytes: head, fileSize: fileSize) } catch {
        throw BootFailure("\(kernelName) is not an arm64 Image: \(error)")
      }
    case .gzip, .zbootGzip, .zbootZstd:
      let kernel = try readCompressed(kernelFile, format: format, name: kernelName, fat: &fat)
      header = kernel.header
      compressed = kernel
    }

    // Command line and DT edits (sizes do not depend on the addresses filled in later).
    let bootargs = entry.commandLine(appending: platform.bootArguments)
    let estimate = editedTree(bootargs: bootargs, initrd: initrdSize > 0 ? (0, 0) : nil).count
    let layout: BootLayout
    do throws(BootLayoutError) {
      layout = try BootLayout(memory: platform.memory, firmwareEnd: fw_image_end(), kernel: header,
                              initrdSize: initrdSize, deviceTreeCapacity: UInt64(estimate + 4096),
                              below: compressed?.regionStart)
    } catch { throw BootFailure("kernel, initrd and DTB do not fit in RAM: \(error)") }

    if let compressed { try unpack(compressed, into: layout, name: kernelName) }
    do throws(FATError) {
      if compressed == nil { try fat.readFile(kernelFile, into: buffer(layout.kernel, Int(kernelFile.size))) }
      var offset: UInt64 = 0
      for f in initrdFiles {
        try fat.readFile(f, into: buffer(layout.initrd + offset, Int(f.size)))
        offset += UInt64(f.size)
      }
    } catch { throw BootFailure("loading: \(error)") }

    let dtb = editedTree(bootargs: bootargs, initrd: initrdSize > 0 ? (layout.initrd, layout.initrd + initrdSize) : nil)
    let dtbBuffer = buffer(layout.deviceTree, dtb.count)
    dtb.withUnsafeBytes { src in
      if let s = src.baseAddress, let d = dtbBuffer.baseAddress { d.copyMemory(from: s, byteCount: dtb.count) }
    }

    beforeEntry(LoadedBoot(layout: layout, kernelFileAddress: compressed?.fileAddress ?? layout.kernel,
                           kernelFileSize: Int(kernelFile.size), commandLine: bootargs))
    let elapsed = millisecondsSince(bootCounter)
    log("booting \(ByteString.string(entry.title)) (\(ByteString.string(entry.linux)), \(kernelFile.size) bytes, initrd \(initrdSize) bytes) in \(elapsed) ms")
    fw_dcache_clean_inval(layout.kernel, header.imageSize)
    if initrdSize > 0 { fw_dcache_clean_inval(layout.initrd, initrdSize) }
    fw_dcache_clean_inval(layout.deviceTree, UInt64(dtb.count))
    fw_enter_kernel(layout.kernel, layout.deviceTree)
  }

  /// Reads a compressed kernel file whole into the compressed-file buffer at the top of RAM and
  /// finds the Image header inside and its size: for gzip from its first 64 bytes unpacked and
  /// ISIZE; for zstd by unpacking the payload below the file (its size is the frame's content
  /// size, else the le32 Linux appends after the payload).
  func readCompressed(_ file: FATDirectoryEntry, format: KernelFormat, name: String,
                      fat: inout EFIVolume) throws(BootFailure) -> CompressedKernel {
    let fileSize = UInt64(file.size)
    let address: UInt64
    do throws(BootLayoutError) {
      address = try BootLayout.compressedKernelBuffer(memory: platform.memory, firmwareEnd: fw_image_end(), size: fileSize)
    } catch { throw BootFailure("kernel \(name): no room to read the compressed file: \(error)") }
    do throws(FATError) { try fat.readFile(file, into: buffer(address, Int(fileSize))) } catch {
      throw BootFailure("reading the kernel: \(error)")
    }
    var payload = UnsafeRawBufferPointer(buffer(address, Int(fileSize)))
    switch format {
    case .zbootGzip(let offset, let size), .zbootZstd(let offset, let size):
      payload = UnsafeRawBufferPointer(rebasing: payload[offset..<offset + size])  // bounds checked by detect
    default: break
    }
    if case .zbootZstd(let offset, let size) = format {
      // The unpacked size: the frame's content size, else Linux's le32 after the payload.
      let file = UnsafeRawBufferPointer(buffer(address, Int(fileSize)))
      var unpackedSize: UInt64
      if let declared = (try? Zstd.frameContentSize(payload)) ?? nil { unpackedSize = declared } else {
        guard let trailer = file.le32(at: offset + size) else { throw BootFailure("kernel \(name): EFI zboot (zstd) size trailer missing") }
        unpackedSize = UInt64(trailer)
      }
      let zstdSize = (unpackedSize + 0xFFFF) & ~0xFFFF
      guard address >= zstdSize, let below = try? BootLayout.compressedKernelBuffer(
        memory: platform.memory, firmwareEnd: fw_image_end(), size: fileSize + zstdSize), below + zstdSize <= address
      else { throw BootFailure("kernel \(name): no room to unpack the EFI zboot (zstd) payload of \(unpackedSize) bytes") }
      let start = fw_read_cntvct()
      let output = buffer(below, Int(unpackedSize))
      let produced: Int
      do throws(ZstdError) { produced = try Zstd.decompress(payload, into: output) } catch {
        throw BootFailure("kernel \(name): EFI zboot (zstd) \(error)")
      }
      let unpacked = UnsafeRawBufferPointer(rebasing: output[..<produced])
      let header: ArmImageHeader
      do throws(KernelImageError) { header = try ArmImageHeader(bytes: unpacked, fileSize: UInt64(produced)) } catch {
        throw BootFailure("kernel \(name): the EFI zboot (zstd) data is not an arm64 Image: \(error)")
      }
      log("kernel \(name): EFI zboot (zstd), \(payload.count) bytes unpacked to \(produced) in \(millisecondsSince(start)) ms")
      return CompressedKernel(fileAddress: address, regionStart: below, payload: payload, unpacked: unpacked,
                              unpackedSize: produced, header: header, kind: "EFI zboot (zstd)")
    }
    let kind = format == .gzip ? "gzip" : "EFI zboot (gzip)"
    guard let unpackedSize = Gzip.uncompressedSizeHint(payload) else { throw BootFailure("kernel \(name): gzip data truncated") }
    let prefix = UnsafeMutableRawBufferPointer.allocate(byteCount: ArmImageHeader.size, alignment: 8)
    defer { prefix.deallocate() }
    let n: Int
    do throws(DecompressionError) { n = try Gzip.decompressPrefix(payload, into: prefix) } catch {
      throw BootFailure("kernel \(name): \(kind) \(error)")
    }
    let header: ArmImageHeader
    do throws(KernelImageError) {
      header = try ArmImageHeader(bytes: UnsafeRawBufferPointer(rebasing: prefix[..<n]), fileSize: UInt64(unpackedSize))
    } catch { throw BootFailure("kernel \(name): the \(kind) data is not an arm64 Image: \(error)") }
    return CompressedKernel(fileAddress: address, regionStart: address, payload: payload, unpacked: nil,
                            unpackedSize: Int(unpackedSize), header: header, kind: kind)
  }

  /// Puts the kernel into its place (at most `image_size` bytes): unpacks a gzip member there, or
  /// copies the already unpacked zstd payload; then checks the Image it holds.
  func unpack(_ kernel: CompressedKernel, into layout: BootLayout, name: String) throws(BootFailure) {
    let start = fw_read_cntvct()
    let destination = buffer(layout.kernel, Int(kernel.header.imageSize))
    let produced: Int
    if let unpacked = kernel.unpacked {
      guard unpacked.count <= destination.count, let d = destination.baseAddress, let s = unpacked.baseAddress else {
        throw BootFailure("kernel \(name): the unpacked Image (\(unpacked.count) bytes) exceeds its image_size")
      }
      d.copyMemory(from: s, byteCount: unpacked.count)
      produced = unpacked.count
    } else {
      do throws(DecompressionError) { produced = try Gzip.decompress(kernel.payload, into: destination) } catch {
        throw BootFailure("kernel \(name): \(kernel.kind) \(error)")
      }
    }
    let header: ArmImageHeader
    do throws(KernelImageError) {
      header = try ArmImageHeader(bytes: UnsafeRawBufferPointer(rebasing: destination[..<produced]), fileSize: UInt64(produced))
    } catch { throw BootFailure("kernel \(name): the unpacked data is not an arm64 Image: \(error)") }
    guard header == kernel.header else { throw BootFailure("kernel \(name): the unpacked Image header changed") }
    if kernel.unpacked == nil {
      log("kernel \(name): \(kernel.kind), \(kernel.payload.count) bytes unpacked to \(produced) in \(millisecondsSince(start)) ms")
    }
  }

  func buffer(_ address: UInt64, _ count: Int) -> UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(address)), count: count)
  }

  /// The DTB handed to Linux: /chosen bootargs and linux,initrd-start/end set.
  func editedTree(bootargs: [UInt8], initrd: (UInt64, UInt64)?) -> [UInt8] {
    var t = tree
    let chosen = t.chosenNode()
    t.setStringProperty(chosen, "bootargs", bootargs)
    if let (start, end) = initrd {
      t.setU64Property(chosen, "linux,initrd-start", start)
      t.setU64Property(chosen, "linux,initrd-end", end)
    } else {
      t.removeProperty(chosen, "linux,initrd-start")
      t.removeProperty(chosen, "linux,initrd-end")
    }
    return t.serialized()
  }

  /// The entry to boot from the ESP `volume` (the direct path's and EFIStubBoot's choice).
  static func chooseEntry(_ volume: inout EFIVolume, requested: [UInt8]?) throws(BootFailure) -> BootEntry {
    do throws(BootEntryChoiceError) {
      return try ESPOffer.chooseEntry(&volume, requested: requested) { log($0) }
    } catch { throw BootFailure(error.description) }
  }
}
