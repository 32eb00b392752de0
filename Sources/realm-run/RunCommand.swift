import ArgumentParser
import KVM
import Logging
import RealmVMM

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `realm-run [run]`: builds a machine from the options and runs it to the end.
struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Run a machine (the default when no subcommand is given).",
    discussion: """
      Boots the bundled firmware (which loads Linux from --disk), other firmware (--firmware), \
      or a Linux arm64 Image directly (--kernel). The guest's console is streamed to standard \
      output; on a terminal, input goes to the guest and Ctrl-A x quits.
      """)

  @Option(name: [.short, .customLong("mem")], help: ArgumentHelp(
    "Guest RAM: MiB, or a number with K, M, G or T.", valueName: "size"))
  var memory: String = "256M"

  @Option(name: [.short, .long], help: ArgumentHelp("Number of vCPUs.", valueName: "n"))
  var cpus: Int = 1

  @Option(help: ArgumentHelp("Boot this Linux arm64 Image directly instead of firmware.", valueName: "file"))
  var kernel: String?

  @Option(help: ArgumentHelp("Initial ramdisk for --kernel.", valueName: "file"))
  var initrd: String?

  @Option(help: ArgumentHelp(
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

  @Flag(inversion: .prefixedNo, help: "Run the guest as an Arm CCA Realm (--no-realm: a normal VM).")
  var realm: Bool = true

  @Option(help: ArgumentHelp("Realm measurement hash algorithm: sha256 or sha512.", valueName: "algorithm"))
  var measurementAlgo: MeasurementAlgorithmArgument = .sha256

  @Option(help: ArgumentHelp("Realm Personalization Value: up to 64 bytes of text.", valueName: "string"))
  var realmPv: String?

  @Option(help: ArgumentHelp(
    "KVM CCA host UAPI series to speak instead of probing: \(CCAGeneration.namedSeries.map(\.name).joined(separator: ", ")).",
    valueName: "series"))
  var ccaAbi: String?

  @Option(help: ArgumentHelp("The guest console: serial (8250 UART, ttyS0) or virtio (virtio-console, hvc0).", valueName: "device"))
  var console: ConsoleArgument = .serial

  @Option(help: ArgumentHelp("Stop the guest after this many seconds (exit status 124).", valueName: "seconds"))
  var timeout: Double?

  @Option(help: ArgumentHelp("Also write the guest's console output to this file.", valueName: "file"))
  var consoleLog: String?

  @Option(help: ArgumentHelp("Write the device tree given to the guest to this file.", valueName: "file"))
  var dumpDtb: String?

  @Option(help: ArgumentHelp("Log level on stderr.", valueName: "level"))
  var logLevel: LogLevelArgument = .warning

  func validate() throws {
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
    if let timeout, !(timeout > 0 && timeout.isFinite) {
      throw ValidationError("--timeout must be a positive number of seconds")
    }
    for value in disk {
      do {
        _ = try DiskConfig(parsing: value)
      } catch {
        throw ValidationError(error.description)
      }
    }
    if let realmPv, realmPv.utf8.count > 64 {
      throw ValidationError("--realm-pv: \(realmPv.utf8.count) bytes; at most 64")
    }
    if let ccaAbi, CCAGeneration(seriesName: ccaAbi) == nil {
      throw ValidationError("--cca-abi \(ccaAbi): not one of \(CCAGeneration.namedSeries.map(\.name).joined(separator: ", "))")
    }
    if !realm && (realmPv != nil || ccaAbi != nil || measurementAlgo != .sha256) {
      throw ValidationError("--measurement-algo, --realm-pv and --cca-abi are for Realms; drop --no-realm")
    }
    if kernel == nil && firmware == nil && disk.isEmpty {
      throw ValidationError("nothing to boot: give --disk (with the bundled firmware), --firmware or --kernel")
    }
  }

  func run() throws {
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = logLevel.level
      return handler
    }
    let logger = Logger(label: "realm-run")
    do {
      let config = try makeConfig()
      let console = try TerminalConsole(logPath: consoleLog)
      let machine = try Machine(config: config, console: console, logger: logger)
      if let dumpDtb {
        try machine.writeDeviceTree(to: dumpDtb)
      }
      let outcome = try machine.run(timeout: timeout)
      switch outcome {
      case .timedOut:
        RealmRun.report("the guest did not finish within \(formatted(timeout ?? 0)) s (--timeout); stopped it")
      case .crashed(let why):
        RealmRun.report("guest crashed: \(why)")
      case .reset:
        RealmRun.report("the guest asked for a reset; not restarting it")
      case .poweredOff, .quit:
        break
      }
      throw ExitStatus(outcome)
    } catch let error as VMMError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
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
      algorithm: measurementAlgo.algorithm, personalization: realmPv.map { Array($0.utf8) },
      generation: ccaAbi.flatMap(CCAGeneration.init(seriesName:)))
    return MachineConfig(
      memorySize: (try? MemorySize(parsing: memory).bytes) ?? 0, cpus: cpus, boot: boot,
      kernelParameters: params, disks: disks, realm: realm, realmOptions: realmOptions,
      console: console.console)
  }

  private func formatted(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
  }
}

/// `--measurement-algo` values.
enum MeasurementAlgorithmArgument: String, ExpressibleByArgument, CaseIterable {
  case sha256, sha512

  var algorithm: MeasurementAlgorithm { self == .sha256 ? .sha256 : .sha512 }
}

/// `--console` values.
enum ConsoleArgument: String, ExpressibleByArgument, CaseIterable {
  case serial, virtio

  var console: MachineConfig.Console { self == .serial ? .serial : .virtio }
}

/// `--log-level` values (swift-log's levels).
enum LogLevelArgument: String, ExpressibleByArgument, CaseIterable {
  case trace, debug, info, notice, warning, error, critical

  var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .warning }
}
