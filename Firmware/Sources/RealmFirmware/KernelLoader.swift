import FirmwareSupport
import FirmwareCore

/// What `KernelLoader.boot` placed in RAM, for the steps before entry (measurement, clean-up).
struct LoadedBoot {
  var layout: BootLayout
  /// The kernel image's bytes as read from its file (at `layout.kernel`).
  var kernelFileSize: Int
  /// The command line written to /chosen/bootargs (no terminator).
  var commandLine: [UInt8]

  var kernel: UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(layout.kernel)), count: kernelFileSize)
  }
  /// All initrds, concatenated as loaded (empty when there is none).
  var initrd: UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(layout.initrd)), count: Int(layout.initrdSize))
  }
}

/// GPT → first FAT ESP → BLS default entry → kernel + initrds + command line → Linux.
struct KernelLoader {
  var tree: DeviceTree
  let platform: PlatformDescription
  let bootCounter: UInt64

  /// Loads the default entry from `device` and enters the kernel; `beforeEntry` runs last
  /// (device reset, Realm clean-up). Never returns; failures are reported and power off.
  mutating func boot(device: inout VirtioBlockDevice, beforeEntry: (LoadedBoot) -> Void) {
    let gpt: GUIDPartitionTable
    let esp: GPTPartition
    do throws(GPTError) {
      gpt = try GUIDPartitionTable(device: &device)
      esp = try gpt.efiSystemPartition()
    } catch { fail("partition table: \(error)") }
    if let fallback = gpt.fallback { log("warning: \(fallback)") }
    var fat: FATVolume<PartitionBlockDevice<VirtioBlockDevice>>
    do throws(FATError) {
      fat = try FATVolume(device: PartitionBlockDevice(base: device, partition: esp))
    } catch { fail("EFI system partition: \(error)") }

    let entry = chooseEntry(&fat)
    let kernelFile: FATDirectoryEntry
    var initrdFiles: [FATDirectoryEntry] = []
    do throws(FATError) {
      kernelFile = try fat.lookup(entry.linux)
      for path in entry.initrds { initrdFiles.append(try fat.lookup(path)) }
    } catch { fail("\(ByteString.string(entry.linux)) or an initrd: \(error)") }
    var initrdSize: UInt64 = 0
    for f in initrdFiles { initrdSize += UInt64(f.size) }

    // Kernel header from the first cluster.
    let header: ArmImageHeader
    do throws(KernelImageError) {
      let head: [UInt8]
      do throws(FATError) { head = try fat.readFirstCluster(of: kernelFile) } catch { fail("reading the kernel: \(error)") }
      header = try ArmImageHeader(bytes: head, fileSize: UInt64(kernelFile.size))
    } catch { fail("\(ByteString.string(entry.linux)) is not an arm64 Image: \(error)") }

    // Command line and DT edits (sizes do not depend on the addresses filled in later).
    let existing = platform.bootArguments
    var bootargs = entry.options
    if !existing.isEmpty { bootargs += bootargs.isEmpty ? existing : [32] + existing }
    let estimate = editedTree(bootargs: bootargs, initrd: initrdSize > 0 ? (0, 0) : nil).count
    let layout: BootLayout
    do throws(BootLayoutError) {
      layout = try BootLayout(memory: platform.memory, firmwareEnd: fw_image_end(), kernel: header,
                              initrdSize: initrdSize, deviceTreeCapacity: UInt64(estimate + 4096))
    } catch { fail("kernel, initrd and DTB do not fit in RAM: \(error)") }

    do throws(FATError) {
      try fat.readFile(kernelFile, into: buffer(layout.kernel, Int(kernelFile.size)))
      var offset: UInt64 = 0
      for f in initrdFiles {
        try fat.readFile(f, into: buffer(layout.initrd + offset, Int(f.size)))
        offset += UInt64(f.size)
      }
    } catch { fail("loading: \(error)") }

    let dtb = editedTree(bootargs: bootargs, initrd: initrdSize > 0 ? (layout.initrd, layout.initrd + initrdSize) : nil)
    let dtbBuffer = buffer(layout.deviceTree, dtb.count)
    dtb.withUnsafeBytes { src in
      if let s = src.baseAddress, let d = dtbBuffer.baseAddress { d.copyMemory(from: s, byteCount: dtb.count) }
    }

    beforeEntry(LoadedBoot(layout: layout, kernelFileSize: Int(kernelFile.size), commandLine: bootargs))
    let elapsed = millisecondsSince(bootCounter)
    log("booting \(ByteString.string(entry.title)) (\(ByteString.string(entry.linux)), \(kernelFile.size) bytes, initrd \(initrdSize) bytes) in \(elapsed) ms")
    fw_dcache_clean_inval(layout.kernel, header.imageSize)
    if initrdSize > 0 { fw_dcache_clean_inval(layout.initrd, initrdSize) }
    fw_dcache_clean_inval(layout.deviceTree, UInt64(dtb.count))
    fw_enter_kernel(layout.kernel, layout.deviceTree)
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

  /// Reads /loader/loader.conf and /loader/entries/*.conf and picks the entry to boot.
  func chooseEntry(_ fat: inout FATVolume<PartitionBlockDevice<VirtioBlockDevice>>) -> BootEntry {
    var configuration = LoaderConfiguration()
    if let file = try? fat.lookup(ByteString.of("/loader/loader.conf")), let text = try? fat.readFile(file) {
      do throws(BootEntryError) { configuration = try LoaderConfiguration(text: text) } catch {
        log("ignoring /loader/loader.conf: \(error)")
      }
    }
    var entries: [BootEntry] = []
    let directory: [FATDirectoryEntry]
    do throws(FATError) {
      directory = try fat.entries(of: try fat.lookup(ByteString.of("/loader/entries")))
    } catch { fail("/loader/entries: \(error)") }
    for file in directory where !file.isDirectory && ByteString.hasSuffix(ByteString.lowercased(file.name), ByteString.of(".conf")) {
      let id = Array(file.name.dropLast(5))
      do throws(FATError) {
        let text = try fat.readFile(file, limit: 64 * 1024)
        do throws(BootEntryError) { entries.append(try BootEntry(id: id, text: text)) } catch {
          log("ignoring entry \(ByteString.string(file.name)): \(error)")
        }
      } catch { log("cannot read \(ByteString.string(file.name)): \(error)") }
    }
    do throws(BootEntryError) {
      return try BootEntrySelection.choose(entries, configuration: configuration, requested: platform.bootEntry)
    } catch { fail("no usable boot entry: \(error)") }
  }
}
