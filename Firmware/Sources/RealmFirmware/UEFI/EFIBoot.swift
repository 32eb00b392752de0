import FirmwareSupport
import FirmwareCore

/// The UEFI boot path: an EFI environment over this machine, then the ESP's removable-media
/// application `\EFI\BOOT\BOOTAA64.EFI` (shim, GRUB, systemd-boot or a kernel's EFI stub), or
/// for `.efiStub` the default BLS entry's kernel (EFIStubBoot).
enum EFIBoot {

  /// Sets up the environment, loads and starts the application. Returns only by throwing, when
  /// the application could not be loaded or returned before ExitBootServices: the boot manager
  /// then tries the next disk. An application that returns after ExitBootServices ends the boot.
  static func start(platform: PlatformDescription, deviceTree: [UInt8], disks: [EFIDisk], bootDisk: Int,
                    path: BootPath = .efi, beforeExit: @escaping () -> Void) throws(BootFailure) -> Never {
    var env: EFIEnvironment
    do throws(EFIStatus) {
      env = try environment(platform: platform, beforeExit: beforeExit)
    } catch { throw BootFailure("UEFI: setting up memory: \(error)") }

    // Console, disk and partition handles, and the tables the OS reads.
    let console: EFIHandle
    var partitions: [(partition: GPTPartition, handle: EFIHandle, volume: Int?)] = []
    do throws(EFIStatus) {
      console = try env.handles.install([
        EFIProtocolInterface(guid: .simpleTextOutput, interface: address(withUnsafeMutablePointer(to: &fw_efi_con_out) { $0 })),
        EFIProtocolInterface(guid: .simpleTextInput, interface: address(withUnsafeMutablePointer(to: &fw_efi_con_in) { $0 })),
      ])
      env.events.waitForKey = try env.events.create(type: 0x200, notify: 0, context: 0)
      fw_efi_con_in.wait_for_key = pointer(env.events.waitForKey)
      systemTable.pointee.console_in_handle = pointer(console)
      systemTable.pointee.console_out_handle = pointer(console)
      systemTable.pointee.standard_error_handle = pointer(console)

      if EFIRandom.available {
        _ = try env.handles.install([EFIProtocolInterface(guid: .rng, interface: address(withUnsafeMutablePointer(to: &fw_efi_rng) { $0 }))])
      }
      let window = try env.memory.allocatePages(.anyPages, type: .bootServicesData,
                                                pages: EFIReadAhead.maximumSectors * 512 / EFIMemoryMap.pageSize)
      env.storage.readAhead.buffer = pointer(window)
      for (i, disk) in disks.enumerated() {
        let installed = try env.installDisk(disk)
        if i == bootDisk { partitions = installed }
      }
      let tree = try env.poolCopy(deviceTree)
      try env.installConfigurationTable(.deviceTreeTable, tree)
      try env.installConfigurationTable(.rtPropertiesTable,
                                        address(withUnsafeMutablePointer(to: &fw_efi_rt_properties) { $0 }))
      EFIEnvironment.sealHeader(UnsafeMutableRawPointer(withUnsafeMutablePointer(to: &fw_efi_boot_services) { $0 }))
      EFIEnvironment.sealHeader(UnsafeMutableRawPointer(withUnsafeMutablePointer(to: &fw_efi_runtime_services) { $0 }))
      env.refreshSystemTableCRC()
    } catch { throw BootFailure("UEFI: setting up the environment: \(error)") }

    // The application (or the BLS entry's kernel), read through the Simple File System the
    // loader itself will use.
    guard let esp = partitions.first(where: { $0.partition.isEFISystemPartition && $0.volume != nil }),
          let volume = esp.volume else { throw BootFailure("UEFI: the EFI system partition is not a FAT volume") }
    let partitionPath: EFIDevicePath
    do throws(EFIStatus) {
      partitionPath = try devicePath(at: UnsafeRawPointer(pointer(try env.handles.interface(.devicePath, on: esp.handle))))
    } catch { throw BootFailure("UEFI: setting up the environment: \(error)") }
    let image: EFIHandle
    var name = "\\EFI\\BOOT\\BOOTAA64.EFI"
    if path == .efiStub {
      (image, name) = try EFIStubBoot.load(&env, platform: platform, volume: volume, partition: esp.handle,
                                           partitionPath: partitionPath, parent: console)
    } else {
      image = try loadImage(&env, path: ESPOffer.removableMediaPath, name: name, kind: "a loadable AArch64 EFI application",
                            volume: volume, partition: esp.handle, partitionPath: partitionPath, parent: console)
    }

    EFIEnvironment.current = env
    log("UEFI: starting \(name)")
    let status = efiStartImage(image, nil, nil)
    let reason = "UEFI: \(name) returned \(EFIStatus(rawValue: status))"
    // After ExitBootServices the devices are reset and the services gone: nothing to go back to.
    if EFIEnvironment.current?.exitedBootServices ?? true { fail(reason + " after ExitBootServices") }
    EFIEnvironment.current = nil
    throw BootFailure(reason)
  }

  /// Loads the EFI image at FAT `path` (`name` in messages) from the ESP `volume` (on handle
  /// `partition`), as LoadImage with its device path would; `kind` says what it should have been.
  static func loadImage(_ env: inout EFIEnvironment, path: [UInt8], name: String, kind: String, volume: Int,
                        partition: EFIHandle, partitionPath: EFIDevicePath, parent: EFIHandle) throws(BootFailure) -> EFIHandle {
    let index: Int
    do throws(EFIStatus) {
      let file = try env.openFile(volume: volume, path: path)  // (its own statement: it changes env)
      index = try env.fileIndex(pointer(file))
    } catch {
      throw BootFailure("UEFI: reading \(name): \(error)")
    }
    defer { env.closeFile(index) }
    let opened = env.storage.files[index]
    let filePath = EFIDevicePath(nodes: [.filePath(fatPath: path)])
    do throws(EFIStatus) {
      return try env.loadImage(UnsafeRawBufferPointer(start: pointer(opened.contents), count: Int(opened.entry?.size ?? 0)),
                               parent: parent, device: partition, filePath: filePath,
                               fullPath: partitionPath.appending(filePath))
    } catch { throw BootFailure("UEFI: \(name) is not \(kind) (\(error))") }
  }

  /// The firmware's runtime memory: its image's code, data and BSS, 64 KiB-aligned as the Linux
  /// stub and 64 KiB-page kernels need.
  static func runtimeRegion() -> (start: UInt64, end: UInt64) {
    (fw_image_start() & ~0xFFFF, (fw_image_bss_end() + 0xFFFF) & ~0xFFFF)
  }

  /// The memory map of this machine: its RAM free, except the firmware itself (its code and
  /// data stay reserved, as runtime memory, because the system table lives there; its stack
  /// and heap are boot-services data the OS gets back).
  /// The DMA pool lies in the heap: boot-services data, which a Realm returns to RIPAS RAM
  /// before the OS runs (`beforeExit`).
  static func environment(platform: PlatformDescription,
                          beforeExit: @escaping () -> Void) throws(EFIStatus) -> EFIEnvironment {
    var map = EFIMemoryMap()
    systemTable.pointee.number_of_table_entries = 0  // an earlier attempt's tables are gone with it
    let page = EFIMemoryMap.pageSize
    for range in platform.memory {
      let start = (range.base + page - 1) & ~(page - 1)
      let end = (range.base + range.size) & ~(page - 1)
      guard end > start else { continue }
      try map.describe(start: start, pages: (end - start) / page, type: .conventional, attribute: .writeBack)
    }
    let (runtimeStart, runtimeEnd) = runtimeRegion()
    try map.describe(start: runtimeStart, pages: (runtimeEnd - runtimeStart) / page, type: .runtimeServicesCode,
                     attribute: [.writeBack, .runtime])
    try map.describe(start: runtimeEnd, pages: (fw_image_end() - runtimeEnd) / page, type: .bootServicesData,
                     attribute: .writeBack)
    return EFIEnvironment(memory: map, beforeExit: beforeExit)
  }
}
