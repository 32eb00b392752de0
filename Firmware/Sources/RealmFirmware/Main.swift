import FirmwareSupport
import FirmwareCore

/// Entry from start.S with the MMU on and the DTB address the loader passed in x0.
@_cdecl("firmware_main")
public func firmwareMain(dtb: UInt64) {
  let bootCounter = fw_boot_counter

  // 1. Copy the device tree (≤ 2 MiB) out of wherever the loader put it.
  guard let header = UnsafeRawPointer(bitPattern: UInt(dtb)) else { fw_system_off() }
  let headerBytes = Array(UnsafeRawBufferPointer(start: header, count: 8))
  guard let size = try? DeviceTree.totalSize(header: headerBytes), size >= 40, size <= 2 << 20 else { fw_system_off() }
  let blob = Array(UnsafeRawBufferPointer(start: header, count: size))
  let tree: DeviceTree
  let platform: PlatformDescription
  do throws(DeviceTreeError) {
    tree = try DeviceTree(blob: blob)
    platform = try PlatformDescription(tree: tree)
  } catch { fw_system_off() }
  fw_psci_set_conduit(platform.psciConduit == .smc ? 1 : 0)
  for range in platform.memory { _ = fw_mmu_map(range.base, range.size, 1) }
  useSHA256Instructions()

  // 2. Realm bring-up (only with the SMC conduit and FEAT_RME), then the console.
  guard let poolMemory = fw_alloc_pages(Int(DMAPool.totalSize)) else { fw_system_off() }
  let poolBase = UInt64(UInt(bitPattern: poolMemory))
  var alias: UInt64 = 0
  var realm: RealmEnvironment? = nil
  var rsi = RealmServiceInterface(conduit: HardwareConduit(useSMC: true))
  if RealmBootstrap.shouldProbe(conduit: platform.psciConduit, idAA64PFR0: fw_read_id_aa64pfr0()) {
    guard let config = fw_alloc_pages(4096) else { fw_system_off() }
    do throws(RSIError) {
      realm = try RealmBootstrap.run(
        rsi: &rsi, memory: platform.memory, configBuffer: config,
        configBufferIPA: UInt64(UInt(bitPattern: config)), dmaPool: MemoryRange(base: poolBase, size: DMAPool.totalSize),
        configured: { width in
          let shared: UInt64 = 1 << (width - 1)
          setUpConsole(platform.console, alias: shared)
          setUpBootStatus(platform.bootStatus, alias: shared)
        })
    } catch {
      fail("RSI failure: \(describe(error))")
    }
  }
  if let realm {
    alias = realm.sharedBit
    _ = fw_mmu_map(poolBase | alias, DMAPool.totalSize, 1)
    log("Realm: RSI version \(ByteString.hex(realm.versionLower >> 16)).\(realm.versionLower & 0xFFFF) (monitor up to \(ByteString.hex(realm.versionHigher >> 16)).\(realm.versionHigher & 0xFFFF)), IPA width \(realm.ipaWidth)")
    log("RIM " + ByteString.hex(bytes: realm.rim))
  } else {
    setUpConsole(platform.console, alias: 0)
    setUpBootStatus(platform.bootStatus, alias: 0)
  }
  log("Embedded Swift firmware loaded at 0x\(ByteString.hex(fw_image_start())), \(platform.memory.count) RAM range(s), DTB \(size) bytes at 0x\(ByteString.hex(dtb))")

  // 3. Find the virtio block device.
  guard let host = platform.pciHost else { fail("no pci-host-ecam-generic node in the device tree") }
  _ = fw_mmu_map(host.ecamBase | alias, host.ecamSize, 0)
  var bus = PCIBus(host: host, mmioAlias: alias)
  var disks: [EFIDisk] = []
  for f in bus.functions() where f.vendorID == VirtioPCIID.vendor
    && (f.deviceID == VirtioPCIID.modernDevice(.block) || f.deviceID == VirtioPCIID.transitionalBlock) {
    guard disks.count < DMAPool.maxDisks else {
      log("virtio-blk at 00:\(f.device).\(f.function) ignored: at most \(DMAPool.maxDisks) disks")
      continue
    }
    let bars = bus.configure(f)
    for case let b? in bars { _ = fw_mmu_map(b.cpuAddress | alias, b.size, 0) }
    let aliased = bars.map { $0.map { PCIBar(cpuAddress: $0.cpuAddress | alias, size: $0.size) } }
    do throws(VirtioError) {
      let device = try VirtioBlockDevice(function: f, bars: aliased, pool: DMAPool(base: poolBase, size: DMAPool.totalSize, alias: alias),
                                         slot: disks.count, bounce: realm != nil)
      let disk = EFIDisk(device: device, pciDevice: f.device, pciFunction: f.function)
      disks.append(disk)
      log("virtio-blk at \(disk.name): \(device.sectorCount) sectors")
    } catch {
      log("virtio-blk at 00:\(f.device).\(f.function) unusable")
    }
  }
  guard !disks.isEmpty else { fail("no virtio-blk device found") }

  // 4. Boot: the first disk, in PCI order, whose ESP has something to boot. BLS entries go by the
  // direct path (the fast one), else \EFI\BOOT\BOOTAA64.EFI runs in the UEFI environment;
  // realm-run's --boot-mode can insist on either. A failed attempt moves on to the next.
  let resetDisks = {
    for d in disks {
      if d.device.statistics.requests > 0 { log("disk \(d.name) reads: " + d.device.statistics.summary) }
      d.device.reset()
    }
  }
  // Linux expects all RAM to be RIPAS RAM: the pool goes back before it runs.
  let returnPool = {
    guard realm != nil else { return }
    do throws(RSIError) {
      try rsi.setRIPAS(base: poolBase, top: poolBase + DMAPool.totalSize, state: RSIConstant.ripasRAM)
    } catch { fail("RSI failure: \(describe(error))") }
  }
  BootManager.boot(disks, mode: platform.bootMode) { (chosen, path) throws(BootFailure) -> Never in
    switch path {
    case .efi, .efiStub:
      try EFIBoot.start(platform: platform, deviceTree: blob, disks: disks, bootDisk: chosen, path: path) {
        resetDisks()
        returnPool()
      }
    case .bls:
      var loader = KernelLoader(tree: tree, platform: platform, bootCounter: bootCounter)
      try loader.boot(disk: disks[chosen]) { loaded in
        resetDisks()
        if let realm {
          // Measured boot, as edk2 does for a Realm: DTB → REM0, kernel → REM1, command line and
          // initrd → REM2, each extended with its SHA-256 digest.
          let start = fw_read_cntvct()
          let measurements = blob.withUnsafeBytes { dtbBytes in
            MeasuredBoot.measurements(deviceTree: dtbBytes, kernel: loaded.kernel, commandLine: loaded.commandLine,
                                      initrd: loaded.initrd)
          }
          do throws(RSIError) {
            try MeasuredBoot.extend(measurements, rsi: &rsi) { m in
              log("REM\(m.rem) extended with \(m.item.name) sha256 " + ByteString.hex(bytes: m.digest))
            }
            // What the RMM holds now (RSI_MEASUREMENT_READ 1...3), for `measure`'s prediction to
            // be checked against: REM0-REM2 at the algorithm's length.
            let size = RealmHashAlgorithm(rmiValue: realm.hashAlgorithm)?.digestSize ?? 64
            var line = "REMs after measured boot:"
            for index: UInt64 in 1...3 {
              line += " " + ByteString.hex(bytes: Array(try rsi.measurement(index: index).prefix(size)))
            }
            log(line)
            log("measured boot: \(loaded.kernel.count + loaded.initrd.count) bytes hashed and extended in \(millisecondsSince(start)) ms")
          } catch { fail("RSI failure: \(describe(error))") }
        }
        returnPool()
      }
    }
  }
}

/// Measured boot hashes the kernel with the ARMv8 SHA-256 instructions where the CPU has them
/// (ID_AA64ISAR0_EL1.SHA2), once they give FIPS 180-2's digest of "abc": under TCG they are
/// several times faster than the Swift rounds.
func useSHA256Instructions() {
  guard (fw_read_id_aa64isar0() >> 12) & 0xF != 0 else { return }
  SHA256.platformCompress = fw_sha256_blocks
  let expected: [UInt8] = [
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
  ]
  if SHA256.hash([0x61, 0x62, 0x63]) != expected { SHA256.platformCompress = nil }
}

func setUpConsole(_ console: ConsoleDevice?, alias: UInt64) {
  guard let c = console else { return }
  let base = c.base | alias
  _ = fw_mmu_map(base, 0x1000, 0)
  fw_console_set(c.kind == .pl011 ? 1 : 2, base, c.registerShift, c.ioWidth)
}

/// Points `fail` and the exception reporter at realm-run's boot-status page, if the DT has one.
func setUpBootStatus(_ page: UInt64?, alias: UInt64) {
  guard let page else { return }
  _ = fw_mmu_map(page | alias, 0x1000, 0)
  fw_boot_status_set(page | alias)
}

func describe(_ e: RSIError) -> String {
  switch e {
  case .unsupportedVersion(let lo, let hi): return "RSI version 1.0 unsupported (monitor 0x\(ByteString.hex(lo))..0x\(ByteString.hex(hi)))"
  case .status(let f, let code): return "call 0x\(ByteString.hex(UInt64(f))) returned \(code)"
  case .rejected(let base): return "host rejected RIPAS change at 0x\(ByteString.hex(base))"
  case .badProgress(let base, let nb): return "IPA_STATE_SET progress 0x\(ByteString.hex(nb)) invalid from 0x\(ByteString.hex(base))"
  case .noProgress(let base): return "IPA_STATE_SET made no progress at 0x\(ByteString.hex(base))"
  case .badIPAWidth(let w): return "impossible IPA width \(w)"
  case .misalignedRange(let b, let t): return "range 0x\(ByteString.hex(b))-0x\(ByteString.hex(t)) unusable"
  case .badMeasurement(let index, let size): return "cannot extend measurement \(index) with \(size) bytes"
  }
}
