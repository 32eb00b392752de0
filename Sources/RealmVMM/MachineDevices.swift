import AsyncIO
import Devices
import GuestMemory
import KVM
import NineP
import Platform
import UserNetwork
import VirtIO

/// Why the machine's PCI devices could not be created.
public enum MachineDevicesError: Error, CustomStringConvertible {
  case disk(BlockFileError)
  /// A `--share` directory could not be opened.
  case share(path: String, Errno)
  /// A `--net` tap device could not be opened.
  case network(TapDevice.OpenError)
  /// A `--net user` stack could not be set up (a forward's host port taken, most likely).
  case userNetwork(UserNetwork.SetupError)
  case ioThread(AsyncIOError)

  public var description: String {
    switch self {
    case .disk(let error): return error.description
    case .share(let path, let errno): return "--share \(path): cannot open the directory: \(errno)"
    case .network(let error): return "--net: \(error)"
    case .userNetwork(let error): return "--net: \(error)"
    case .ioThread(let error): return error.description
    }
  }
}

/// The machine's PCI side: the ECAM host bridge, its memory window, a virtio-blk function per
/// `--disk` (slots 0, 1, ...), then the virtio console and the entropy device when selected, a
/// virtio-9p function per `--share` and a virtio-net function per `--net` (next slots), and the I/O thread
/// the disks share. The machine registers ``register(on:)``'s ranges on its bus and calls
/// ``shutdown()`` once the vCPUs have stopped.
final class MachineDevices: @unchecked Sendable {
  let bridge: PCIHostBridge
  let window: PCIMemoryWindow
  let disks: [VirtioBlock]
  let console: VirtioConsole?
  private let ioLoop: IOLoop?
  /// The functions whose doorbells KVM catches (empty without a VM, or where it refuses).
  private let doorbells: [KernelDoorbells]
  /// The INTx lines KVM raises from eventfds (empty without a VM, or where it refuses).
  private let kernelLines: [KernelInterruptLine]
  /// The `--net` backends, open for as long as the machine is.
  private let networks: [NetworkBackend]

  /// Each function's BAR0 size, and so the stride of the VMM's BAR placement.
  static let barStride = VirtioPCITransport.Layout.barSize

  /// Opens (and locks) every `--disk` image: done first of all when a machine is built, so a
  /// missing, unreadable or locked image is refused before any KVM object exists.
  static func openDisks(_ config: MachineConfig) throws(MachineDevicesError) -> [BlockFile] {
    var files: [BlockFile] = []
    for disk in config.disks {
      // The same file twice would otherwise meet its own lock and be called "in use by another process".
      if let identity = BlockFile.identity(of: disk.path),
        let earlier = files.first(where: { $0.identity == identity })
      {
        throw .disk(.givenTwice(path: disk.path, earlier: earlier.path))
      }
      do {
        files.append(try BlockFile(path: disk.path, readOnly: disk.readOnly, direct: disk.direct))
      } catch {
        throw .disk(error)
      }
    }
    return files
  }

  /// Opens every `--share` directory (read-only ones as such), first of all with the disks.
  static func openShares(_ config: MachineConfig) throws(MachineDevicesError) -> [SharedDirectory] {
    var directories: [SharedDirectory] = []
    for share in config.shares {
      do {
        directories.append(try SharedDirectory(path: share.path, readOnly: share.readOnly))
      } catch {
        throw .share(path: share.path, error)
      }
    }
    return directories
  }

  /// Opens every `--net` backend, with the disks and shares: a tap device, or a user-mode stack
  /// (started: its forwards listen from now on).
  static func openNetworks(_ config: MachineConfig, log: @escaping @Sendable (String) -> Void = { _ in }) throws(MachineDevicesError) -> [NetworkBackend] {
    var backends: [NetworkBackend] = []
    for network in config.networks {
      switch network.backend {
      case .tap(let name):
        do {
          backends.append(.tap(try TapDevice(name: name)))
        } catch {
          throw .network(error)
        }
      case .user(let forwards):
        do {
          let stack = try UserNetwork(forwards: forwards, log: log)
          try stack.start()
          backends.append(.user(stack))
        } catch {
          throw .userNetwork(error)
        }
      }
    }
    return backends
  }

  /// Builds the devices for `config`.
  /// - Parameters:
  ///   - interrupt: the line for SPI number `n` (INTx of slot `s` is SPI pciINTxSPIBase + s % 4).
  ///   - ipa: a Realm's layout: drivers must accept ACCESS_PLATFORM, and ring and buffer addresses
  ///     arrive through the unprotected alias.
  ///   - vm: the VM whose KVM catches the queue notifications (KVM_IOEVENTFD, with
  ///     `config.ioeventfd`) and raises the INTx lines from eventfds (KVM_IRQFD, with
  ///     `config.irqfd`); nil: notifications exit and lines go through `interrupt`.
  static func make(
    config: MachineConfig, disks files: [BlockFile], shares: [SharedDirectory] = [], networks: [NetworkBackend] = [], memory: GuestMemory, output: any ConsoleOutput, ipa: IPALayout,
    interrupt: (UInt32) -> any InterruptLine, vm: VirtualMachine? = nil, log: (String) -> Void = { _ in }
  ) throws(MachineDevicesError) -> MachineDevices {
    let console = config.console == .virtio ? VirtioConsole(output: output) : nil
    // The machine's virtio devices after the disks, one entry each, in PCI slot order: a new
    // device is a line here (the network's after the I/O thread, which they need).
    var devices: [any VirtioDevice] = []
    if let console { devices.append(console) }
    if config.entropy { devices.append(VirtioEntropy()) }
    for (share, directory) in zip(config.shares, shares) { devices.append(VirtioShare(directory: directory, tag: share.tag)) }
    // The I/O thread: the disks' I/O, the network's frames, and the doorbells KVM catches.
    var ioLoop: IOLoop?
    if !files.isEmpty || !networks.isEmpty || (vm != nil && !devices.isEmpty) {
      do {
        ioLoop = try IOLoop(name: "virtio")
      } catch {
        throw .ioThread(error)
      }
      if let reason = ioLoop?.fallbackReason { log("virtio: \(reason)") }
    }
    for (network, backend) in zip(config.networks, networks) {
      devices.append(VirtioNet(backend: backend.descriptor, mac: network.mac, loop: ioLoop!))
    }
    let queues = min(max(config.cpus, 1), 4)
    let disks = files.map { file in
      VirtioBlock(
        file: file, loop: ioLoop!, queues: queues, serial: "rr-\(String(file.identity.inode, radix: 16))",
        limits: ipa.isRealm ? .realm(memorySize: config.memorySize, disks: files.count, queues: queues) : .unlimited)
    }
    devices = disks + devices
    precondition(devices.count <= PCIHostBridge.slotCount && UInt64(devices.count) * barStride <= MemoryMap.pciMemorySize)
    var functions: [Int: any PCIFunction] = [:]
    var doorbells: [KernelDoorbells] = []
    // INTx: slot s raises SPI pciINTxSPIBase + s % 4 (the DTB's interrupt-map), a line the slots
    // that map there share; KVM raises it from an eventfd where it takes one (else said once).
    var kernelLines: [KernelInterruptLine] = []
    var irqfdRefusal: KVMError?
    let lines = (0..<UInt32(4)).map { pin -> WiredOrLine in
      let spi = MemoryMap.pciINTxSPIBase + pin
      if config.irqfd, irqfdRefusal == nil, let vm, let ioLoop {
        do throws(KVMError) {
          let line = try KernelInterruptLine(vm: vm, spi: spi, loop: ioLoop)
          kernelLines.append(line)
          return WiredOrLine(line)
        } catch {
          irqfdRefusal = error
          log("virtio: interrupts through KVM_IRQ_LINE (KVM_IRQFD refused: \(error))")
        }
      }
      return WiredOrLine(interrupt(spi))
    }
    for (slot, device) in devices.enumerated() {
      let transport = VirtioPCITransport(
        device: device, memory: memory,
        interrupt: lines[slot % 4].source(),
        barAddress: MemoryMap.pciMemoryBase + UInt64(slot) * barStride,
        requireAccessPlatform: ipa.isRealm, addressMask: ~ipa.sharedBit)
      functions[slot] = transport
      // Doorbells in the kernel where it takes them; else they stay MMIO exits (said once).
      guard config.ioeventfd, let vm, let ioLoop, doorbells.count == slot else { continue }
      do {
        doorbells.append(try KernelDoorbells(vm: vm, transport: transport, loop: ioLoop))
      } catch {
        log("virtio: queue notifications exit to realm-run (KVM_IOEVENTFD refused: \(error))")
      }
    }
    do {
      try ioLoop?.start()
    } catch {
      throw .ioThread(error)
    }
    let bridge = PCIHostBridge(functions: functions)
    return MachineDevices(
      bridge: bridge, window: bridge.memoryWindow(base: MemoryMap.pciMemoryBase), disks: disks, console: console,
      ioLoop: ioLoop, doorbells: doorbells, kernelLines: kernelLines, networks: networks)
  }

  private init(
    bridge: PCIHostBridge, window: PCIMemoryWindow, disks: [VirtioBlock], console: VirtioConsole?, ioLoop: IOLoop?,
    doorbells: [KernelDoorbells], kernelLines: [KernelInterruptLine], networks: [NetworkBackend]
  ) {
    self.kernelLines = kernelLines
    self.networks = networks
    self.bridge = bridge
    self.window = window
    self.disks = disks
    self.console = console
    self.ioLoop = ioLoop
    self.doorbells = doorbells
  }

  /// Places the ECAM window and the PCI memory window (every BAR, wherever the guest moves it).
  func register(on bus: inout MMIOBus) throws(BusError) {
    try bus.register(bridge, at: MemoryMap.pciConfigBase, size: PCIHostBridge.configSize)
    try bus.register(window, at: MemoryMap.pciMemoryBase, size: MemoryMap.pciMemorySize)
  }

  /// Stops the I/O thread once every request in flight has completed, then flushes each writable
  /// disk, so every write the guest saw acknowledged is on stable storage. Idempotent.
  func shutdown() {
    for doorbell in doorbells { doorbell.close() }
    ioLoop?.stop()
    for line in kernelLines { line.close() }
    for network in networks { network.close() }
    for disk in disks { _ = disk.file.sync() }
  }

  deinit {
    shutdown()
  }
}

/// A `--net` device's backend: frames one per read and write on ``descriptor``.
enum NetworkBackend {
  case tap(TapDevice)
  case user(UserNetwork)

  var descriptor: FileDescriptor {
    switch self {
    case .tap(let tap): return tap.descriptor
    case .user(let stack): return stack.deviceEnd
    }
  }

  /// Stops a user-mode stack (a tap closes with its device).
  func close() {
    if case .user(let stack) = self { stack.stop() }
  }
}
