import FirmwareSupport
import FirmwareCore

/// The UEFI boot path: an EFI environment over this machine, then the ESP's removable-media
/// application `\EFI\BOOT\BOOTAA64.EFI` (shim, GRUB, systemd-boot or a kernel's EFI stub).
enum EFIBoot {
  static let removableMediaPath = ByteString.of("/EFI/BOOT/BOOTAA64.EFI")

  /// The disk the application comes from.
  struct BootDisk {
    /// The ESP, read through the disk's driver (which keeps the queue's state: one copy reads).
    var fat: FATVolume<PartitionBlockDevice<VirtioBlockDevice>>
    var pciDevice: UInt32
    var pciFunction: UInt32
    var partition: GPTPartition
    var partitionNumber: UInt32
    var application: FATDirectoryEntry
  }

  /// The removable-media application of `device`'s ESP when the ESP has no Boot Loader
  /// Specification entries (those take the direct path, the fast one), else nil.
  static func application(on device: inout VirtioBlockDevice, pciDevice: UInt32, pciFunction: UInt32) -> BootDisk? {
    guard let gpt = try? GUIDPartitionTable(device: &device), let esp = try? gpt.efiSystemPartition(),
          var fat = try? FATVolume(device: PartitionBlockDevice(base: device, partition: esp)) else { return nil }
    if let directory = try? fat.lookup(ByteString.of("/loader/entries")), let entries = try? fat.entries(of: directory),
       entries.contains(where: { !$0.isDirectory && ByteString.hasSuffix(ByteString.lowercased($0.name), ByteString.of(".conf")) }) {
      return nil
    }
    guard let application = try? fat.lookup(removableMediaPath), !application.isDirectory else { return nil }
    let number = gpt.partitions.firstIndex(of: esp).map { UInt32($0 + 1) } ?? 1
    return BootDisk(fat: fat, pciDevice: pciDevice, pciFunction: pciFunction, partition: esp,
                    partitionNumber: number, application: application)
  }

  /// Sets up the environment, loads and starts the application. Returns only to fail: the
  /// application returned or could not be loaded.
  static func start(platform: PlatformDescription, deviceTree: [UInt8], disk: BootDisk,
                    beforeExit: @escaping () -> Void) -> Never {
    var env: EFIEnvironment
    do throws(EFIStatus) {
      env = try environment(platform: platform, beforeExit: beforeExit)
    } catch { fail("UEFI: setting up memory: \(error)") }

    // Console, disk and partition handles, and the tables the OS reads.
    let image: EFIHandle
    var fat = disk.fat
    do throws(EFIStatus) {
      let console = try env.handles.install([
        EFIProtocolInterface(guid: .simpleTextOutput, interface: address(withUnsafeMutablePointer(to: &fw_efi_con_out) { $0 })),
        EFIProtocolInterface(guid: .simpleTextInput, interface: address(withUnsafeMutablePointer(to: &fw_efi_con_in) { $0 })),
      ])
      env.events.waitForKey = try env.events.create(type: 0x200, notify: 0, context: 0)
      fw_efi_con_in.wait_for_key = pointer(env.events.waitForKey)
      systemTable.pointee.console_in_handle = pointer(console)
      systemTable.pointee.console_out_handle = pointer(console)
      systemTable.pointee.standard_error_handle = pointer(console)

      let diskPath = EFIDevicePath(nodes: [.pciRoot(), .pci(function: UInt8(disk.pciFunction), device: UInt8(disk.pciDevice))])
      _ = try env.handles.install([EFIProtocolInterface(guid: .devicePath, interface: try env.poolCopy(diskPath.bytes))])
      let partitionPath = diskPath.appending(.hardDrive(
        partitionNumber: disk.partitionNumber, startLBA: disk.partition.firstLBA, sizeInLBAs: disk.partition.sectorCount,
        partitionGUID: EFIGUID(bytes: disk.partition.uniqueGUID) ?? EFIGUID(0, 0, 0, (0, 0, 0, 0, 0, 0, 0, 0))))
      let partition = try env.handles.install([
        EFIProtocolInterface(guid: .devicePath, interface: try env.poolCopy(partitionPath.bytes))])

      let tree = try env.poolCopy(deviceTree)
      try env.installConfigurationTable(.deviceTreeTable, tree)
      try env.installConfigurationTable(.rtPropertiesTable,
                                        address(withUnsafeMutablePointer(to: &fw_efi_rt_properties) { $0 }))
      EFIEnvironment.sealHeader(UnsafeMutableRawPointer(withUnsafeMutablePointer(to: &fw_efi_boot_services) { $0 }))
      EFIEnvironment.sealHeader(UnsafeMutableRawPointer(withUnsafeMutablePointer(to: &fw_efi_runtime_services) { $0 }))
      env.refreshSystemTableCRC()

      // The application's file, read into pages it is loaded from, then freed.
      let fileSize = UInt64(disk.application.size)
      let filePages = max((fileSize + EFIMemoryMap.pageSize - 1) / EFIMemoryMap.pageSize, 1)
      let file = try env.memory.allocatePages(.anyPages, type: .bootServicesData, pages: filePages)
      do throws(FATError) {
        try fat.readFile(disk.application, into: UnsafeMutableRawBufferPointer(start: pointer(file), count: Int(fileSize)))
      } catch { fail("UEFI: reading \\EFI\\BOOT\\BOOTAA64.EFI: \(error)") }
      let filePath = EFIDevicePath(nodes: [.filePath(Array("\\EFI\\BOOT\\BOOTAA64.EFI".utf16))])
      do throws(EFIStatus) {
        image = try env.loadImage(UnsafeRawBufferPointer(start: pointer(file), count: Int(fileSize)), parent: console,
                                  device: partition, filePath: filePath, fullPath: partitionPath.appending(filePath))
      } catch { fail("UEFI: \\EFI\\BOOT\\BOOTAA64.EFI is not a loadable AArch64 EFI application (\(error))") }
      try env.memory.freePages(at: file, pages: filePages)
    } catch { fail("UEFI: setting up the environment: \(error)") }

    EFIEnvironment.current = env
    log("UEFI: starting \\EFI\\BOOT\\BOOTAA64.EFI")
    let status = efiStartImage(image, nil, nil)
    fail("UEFI: \\EFI\\BOOT\\BOOTAA64.EFI returned \(EFIStatus(rawValue: status))")
  }

  /// The memory map of this machine: its RAM free, except the firmware itself (its code and
  /// data stay reserved, as runtime memory, because the system table lives there; its stack
  /// and heap are boot-services data the OS gets back).
  /// The DMA pool lies in the heap: boot-services data, which a Realm returns to RIPAS RAM
  /// before the OS runs (`beforeExit`).
  static func environment(platform: PlatformDescription,
                          beforeExit: @escaping () -> Void) throws(EFIStatus) -> EFIEnvironment {
    var map = EFIMemoryMap()
    let page = EFIMemoryMap.pageSize
    for range in platform.memory {
      let start = (range.base + page - 1) & ~(page - 1)
      let end = (range.base + range.size) & ~(page - 1)
      guard end > start else { continue }
      try map.describe(start: start, pages: (end - start) / page, type: .conventional, attribute: .writeBack)
    }
    // Runtime regions are 64 KiB-aligned, as the Linux stub and 64 KiB-page kernels need.
    let runtimeStart = fw_image_start() & ~0xFFFF
    let runtimeEnd = (fw_image_bss_end() + 0xFFFF) & ~0xFFFF
    try map.describe(start: runtimeStart, pages: (runtimeEnd - runtimeStart) / page, type: .runtimeServicesCode,
                     attribute: [.writeBack, .runtime])
    try map.describe(start: runtimeEnd, pages: (fw_image_end() - runtimeEnd) / page, type: .bootServicesData,
                     attribute: .writeBack)
    return EFIEnvironment(memory: map, beforeExit: beforeExit)
  }
}
