import ArgumentParser
import FirmwareCore
import KVM
import RealmVMM

/// The options that describe a machine, shared by `run` and `measure` (an `@OptionGroup`).
struct MachineOptions: ParsableArguments {
  // .unconditional: the next word is the value even when it starts with '-', so that `-m -5` is
  // refused as a size rather than reported as a missing value.
  @Option(name: [.short, .customLong("mem")], parsing: .unconditional, help: ArgumentHelp(
    "Guest RAM: MiB, or a number with K, M, G or T.", valueName: "size"))
  var memory: String = "256M"

  @Option(name: [.short, .long], parsing: .unconditional, help: ArgumentHelp("Number of vCPUs.", valueName: "n"))
  var cpus: Int = 1

  @Option(help: ArgumentHelp("Boot this Linux arm64 Image directly instead of firmware.", valueName: "file"))
  var kernel: String?

  @Option(help: ArgumentHelp("Initial ramdisk for --kernel.", valueName: "file"))
  var initrd: String?

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Kernel command line, added after realm-run's console= (with firmware: passed in /chosen/bootargs).",
    valueName: "args"))
  var params: String?

  @Option(help: ArgumentHelp(
    "Firmware to boot instead of the bundled realm-fw.bin (loaded at the start of RAM, x0 = DTB).",
    valueName: "file"))
  var firmware: String?

  @Option(help: ArgumentHelp(
    "A disk image for a virtio-blk device; ',ro' makes it read-only, ',direct' bypasses the host page cache. Repeatable.",
    valueName: "file[,ro][,direct]"))
  var disk: [String] = []

  @Option(help: ArgumentHelp(
    "Share a host directory over virtio-9p: the guest mounts it with 'mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR' (tag: share0, share1, ... by default); ',ro' refuses every change. The guest cannot reach outside DIR. Repeatable.",
    valueName: "dir[,tag=TAG][,ro]"))
  var share: [String] = []

  @Option(help: ArgumentHelp(
    "A virtio-net device. tap=NAME: on a host tap device (opened, or created when realm-run runs as root, and brought up). user: user-mode networking (libslirp, no root): NAT to the host's network, the guest gets 10.0.2.15 by DHCP, 10.0.2.2 is the host's loopback, 10.0.2.3 its DNS; each hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT listens on the host and connects to the guest. mac= sets the guest's address (default: 52:54:00 and three bytes from the backend and the option's position). Repeatable.",
    valueName: "tap=NAME|user[,hostfwd=RULE]...[,mac=MAC]"))
  var net: [String] = []

  @Flag(inversion: .prefixedNo, help: "Run the guest as an Arm CCA Realm (--no-realm: a normal VM).")
  var realm: Bool = true

  @Option(help: ArgumentHelp("Realm measurement hash algorithm: sha256 or sha512.", valueName: "algorithm"))
  var measurementAlgo: RealmHashAlgorithm = .sha256

  @Option(help: ArgumentHelp("Realm Personalization Value: up to 64 bytes of text.", valueName: "string"))
  var realmPv: String?

  @Option(help: ArgumentHelp(
    "KVM CCA host UAPI series to speak instead of probing: \(CCASeries.all.map(\.name).joined(separator: ", ")).",
    valueName: "series"))
  var ccaAbi: String?

  @Option(help: ArgumentHelp("The guest console: serial (8250 UART, ttyS0) or virtio (virtio-console, hvc0).", valueName: "device"))
  var console: ConsoleArgument = .serial

  @Flag(inversion: .prefixedNo, help: "Give the guest a virtio-rng device fed by the host's getrandom (default: on for a Realm, off with --no-realm).")
  var rng: Bool?

  @Flag(inversion: .prefixedNo, help: "Let KVM catch the virtio queue notifications (KVM_IOEVENTFD) instead of exiting to realm-run (--no-ioeventfd: every notification exits, to measure the difference).")
  var ioeventfd: Bool = true

  @Flag(inversion: .prefixedNo, help: "Let KVM raise the virtio devices' interrupts from eventfds (KVM_IRQFD, with a resample eventfd for the level-triggered INTx lines) instead of an ioctl per change (--no-irqfd: KVM_IRQ_LINE, to measure the difference).")
  var irqfd: Bool = true

  @Option(help: ArgumentHelp(
    "Give the guest SVE with vectors of up to this many bits (a multiple of 128). Off without it: a Realm's vector length is measured.",
    valueName: "bits"))
  var sveVl: Int?

  @Flag(help: "Give the guest a PMUv3 (performance counters).")
  var pmu: Bool = false

  @Option(help: ArgumentHelp(
    "The PMU's number of event counters (PMCR_EL0.N; implies --pmu). A Realm's count is measured.",
    valueName: "n"))
  var pmuCounters: Int?

  @Option(help: ArgumentHelp(
    "Boot this Boot Loader Specification entry (its file name without .conf) instead of the default; passed to the firmware in /chosen.",
    valueName: "id"))
  var bootEntry: String?

  @Option(help: ArgumentHelp(
    "How the bundled firmware boots the disk: auto (the ESP's BLS entries by the direct path, else \\EFI\\BOOT\\BOOTAA64.EFI under UEFI), efi (BOOTAA64.EFI under UEFI: shim, GRUB, systemd-boot) or bls (the BLS entries only); passed in /chosen.",
    valueName: "mode"))
  var bootMode: FirmwareBootMode?

  func validate() throws {
    // The longest prefix realm-run adds is "console=hvc0 ".
    if let params, params.utf8.count + 13 >= MachineConfig.commandLineLimit {
      throw ValidationError(
        "--params: \(params.utf8.count) bytes; an arm64 kernel keeps at most \(MachineConfig.commandLineLimit - 1) bytes of command line (COMMAND_LINE_SIZE), realm-run's console= included")
    }
    let size: MemorySize
    do {
      size = try MemorySize(parsing: memory)
    } catch {
      throw ValidationError("--mem: \(error)")
    }
    guard size.bytes >= MachineConfig.minimumMemory else {
      throw ValidationError("--mem \(memory): the guest needs at least \(MachineConfig.minimumMemory >> 20) MiB")
    }
    guard size.bytes % 4096 == 0 else {
      throw ValidationError("--mem \(memory): must be a whole number of 4 KiB pages")
    }
    guard size.bytes <= MemoryMap.maximumRAM else {
      throw ValidationError("--mem \(memory): more than the \(MemoryMap.maximumRAM >> 30) GiB the memory map allows")
    }
    guard (1...MachineConfig.maximumCPUs).contains(cpus) else {
      throw ValidationError("--cpus \(cpus): must be from 1 to \(MachineConfig.maximumCPUs)")
    }
    if kernel != nil && firmware != nil {
      throw ValidationError("--kernel and --firmware cannot both be given")
    }
    if initrd != nil && kernel == nil {
      throw ValidationError("--initrd needs --kernel (firmware loads its initrd from the disk)")
    }
    for value in disk {
      do {
        _ = try DiskConfig(parsing: value)
      } catch {
        throw ValidationError(error.description)
      }
    }
    do {
      _ = try ShareConfig.parse(share)
      _ = try NetConfig.parse(net)
    } catch {
      throw ValidationError(error.description)
    }
    if let realmPv, realmPv.utf8.count > 64 {
      throw ValidationError("--realm-pv: \(realmPv.utf8.count) bytes; at most 64")
    }
    if let ccaAbi, CCASeries(name: ccaAbi) == nil {
      throw ValidationError("--cca-abi \(ccaAbi): not one of \(CCASeries.all.map(\.name).joined(separator: ", "))")
    }
    if !realm && (realmPv != nil || ccaAbi != nil || measurementAlgo != .sha256) {
      throw ValidationError("--measurement-algo, --realm-pv and --cca-abi are for Realms; drop --no-realm")
    }
    if let sveVl, sveVl < 128 || sveVl > 2048 || sveVl % 128 != 0 {
      throw ValidationError("--sve-vl \(sveVl): a multiple of 128 from 128 to 2048")
    }
    if let pmuCounters, !(0...31).contains(pmuCounters) {
      throw ValidationError("--pmu-counters \(pmuCounters): from 0 to 31")
    }
    if let bootEntry {
      guard kernel == nil else { throw ValidationError("--boot-entry is for the firmware; drop --kernel") }
      guard !bootEntry.isEmpty, bootEntry.utf8.count <= 255, !bootEntry.contains("/") else {
        throw ValidationError("--boot-entry '\(bootEntry)': an entry id, as in /loader/entries/<id>.conf")
      }
    }
    if bootMode != nil && kernel != nil { throw ValidationError("--boot-mode is for the firmware; drop --kernel") }
    if kernel == nil && firmware == nil && disk.isEmpty {
      throw ValidationError("nothing to boot: give --disk (with the bundled firmware), --firmware or --kernel")
    }
  }

  /// The machine configuration the options describe (files are checked when the machine is built).
  func makeConfig() throws(VMMError) -> MachineConfig {
    let boot: MachineConfig.Boot
    if let kernel {
      boot = .kernel(path: kernel, initrd: initrd)
    } else if let firmware {
      boot = .firmware(path: firmware)
    } else {
      boot = .firmware(path: try BundledFirmware.locate())
    }
    // validate() has checked every value already.
    let disks = disk.compactMap { try? DiskConfig(parsing: $0) }
    let realmOptions = RealmOptions(
      algorithm: measurementAlgo, personalization: realmPv.map { Array($0.utf8) },
      series: ccaAbi.flatMap(CCASeries.init(name:)))
    return MachineConfig(
      memorySize: (try? MemorySize(parsing: memory).bytes) ?? 0, cpus: cpus, boot: boot,
      kernelParameters: params, disks: disks, realm: realm, realmOptions: realmOptions,
      console: console.console, entropy: rng ?? realm, shares: (try? ShareConfig.parse(share)) ?? [],
      networks: (try? NetConfig.parse(net)) ?? [], ioeventfd: ioeventfd, irqfd: irqfd, sveVectorLength: sveVl, bootEntry: bootEntry, pmu: pmu,
      pmuCounters: pmuCounters, bootMode: bootMode ?? .automatic)
  }
}

extension FirmwareBootMode: ExpressibleByArgument {
  public init?(argument: String) { self.init(name: Array(argument.utf8)) }
  public var defaultValueDescription: String { String(decoding: name, as: UTF8.self) }
  public static var allValueStrings: [String] { allCases.map { String(decoding: $0.name, as: UTF8.self) } }
}
