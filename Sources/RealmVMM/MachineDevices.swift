import AsyncIO
import Devices
import GuestMemory
import VirtIO

/// Why the machine's PCI devices could not be created.
public enum MachineDevicesError: Error, CustomStringConvertible {
  case disk(BlockFileError)
  case ioThread(AsyncIOError)

  public var description: String {
    switch self {
    case .disk(let error): return error.description
    case .ioThread(let error): return error.description
    }
  }
}

/// The machine's PCI side: the ECAM host bridge, its memory window, a virtio-blk function per
/// `--disk` (slots 0, 1, ...), then the virtio console and the entropy device when selected (next
/// slots), and the I/O thread
/// the disks share. The machine registers ``register(on:)``'s ranges on its bus and calls
/// ``shutdown()`` once the vCPUs have stopped.
final class MachineDevices: @unchecked Sendable {
  let bridge: PCIHostBridge
  let window: PCIMemoryWindow
  let disks: [VirtioBlock]
  let console: VirtioConsole?
  private let ioLoop: IOLoop?

  /// Each function's BAR0 size, and so the stride of the VMM's BAR placement.
  static let barStride = VirtioPCITransport.Layout.barSize

  /// Builds the devices for `config`.
  /// - Parameters:
  ///   - interrupt: the line for SPI number `n` (INTx of slot `s` is SPI pciINTxSPIBase + s % 4).
  ///   - ipa: a Realm's layout: drivers must accept ACCESS_PLATFORM, and ring and buffer addresses
  ///     arrive through the unprotected alias.
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

  static func make(
    config: MachineConfig, disks files: [BlockFile], memory: GuestMemory, output: any ConsoleOutput, ipa: IPALayout,
    interrupt: (UInt32) -> any InterruptLine, log: (String) -> Void = { _ in }
  ) throws(MachineDevicesError) -> MachineDevices {
    var ioLoop: IOLoop?
    if !config.disks.isEmpty {
      do {
        ioLoop = try IOLoop(name: "virtio-blk")
      } catch {
        throw .ioThread(error)
      }
      if let reason = ioLoop?.fallbackReason { log("virtio-blk: \(reason)") }
    }
    let queues = min(max(config.cpus, 1), 4)
    let disks = files.map { file in
      VirtioBlock(
        file: file, loop: ioLoop!, queues: queues, serial: "rr-\(String(file.identity.inode, radix: 16))",
        limits: ipa.isRealm ? .realm(memorySize: config.memorySize, disks: files.count, queues: queues) : .unlimited)
    }
    let console = config.console == .virtio ? VirtioConsole(output: output) : nil
    // The machine's virtio devices, one entry each, in PCI slot order: a new device is a line here.
    var devices: [any VirtioDevice] = disks
    if let console { devices.append(console) }
    if config.entropy { devices.append(VirtioEntropy()) }

    precondition(devices.count <= PCIHostBridge.slotCount && UInt64(devices.count) * barStride <= MemoryMap.pciMemorySize)
    var functions: [Int: any PCIFunction] = [:]
    for (slot, device) in devices.enumerated() {
      functions[slot] = VirtioPCITransport(
        device: device, memory: memory,
        interrupt: interrupt(MemoryMap.pciINTxSPIBase + UInt32(slot % 4)),
        barAddress: MemoryMap.pciMemoryBase + UInt64(slot) * barStride,
        requireAccessPlatform: ipa.isRealm, addressMask: ~ipa.sharedBit)
    }
    do {
      try ioLoop?.start()
    } catch {
      throw .ioThread(error)
    }
    let bridge = PCIHostBridge(functions: functions)
    return MachineDevices(
      bridge: bridge, window: bridge.memoryWindow(base: MemoryMap.pciMemoryBase), disks: disks, console: console,
      ioLoop: ioLoop)
  }

  private init(bridge: PCIHostBridge, window: PCIMemoryWindow, disks: [VirtioBlock], console: VirtioConsole?, ioLoop: IOLoop?) {
    self.bridge = bridge
    self.window = window
    self.disks = disks
    self.console = console
    self.ioLoop = ioLoop
  }

  /// Places the ECAM window and the PCI memory window (every BAR, wherever the guest moves it).
  func register(on bus: inout MMIOBus) throws(BusError) {
    try bus.register(bridge, at: MemoryMap.pciConfigBase, size: PCIHostBridge.configSize)
    try bus.register(window, at: MemoryMap.pciMemoryBase, size: MemoryMap.pciMemorySize)
  }

  /// Stops the I/O thread once every request in flight has completed, then flushes each writable
  /// disk, so every write the guest saw acknowledged is on stable storage. Idempotent.
  func shutdown() {
    ioLoop?.stop()
    for disk in disks { _ = disk.file.sync() }
  }

  deinit {
    shutdown()
  }
}
