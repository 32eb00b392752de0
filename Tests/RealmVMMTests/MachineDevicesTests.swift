import Devices
import FirmwareCore
import GuestMemory
import Testing
import TestSupport
import VirtIO

@testable import RealmVMM

/// Discards what it is given.
private final class NoOutput: ConsoleOutput {
  func write(_ buffer: UnsafeRawBufferPointer) {}
}

@Suite struct MachineDevicesTests {
  /// The PCI device id in slot `slot` of the ECAM window (0xFFFF: empty).
  func deviceID(_ devices: MachineDevices, slot: Int) -> UInt64 {
    devices.bridge.read(offset: UInt64(slot) << 15 | 2, size: 2)
  }

  func make(console: MachineConfig.Console, entropy: Bool, realm: Bool) throws -> MachineDevices {
    let config = MachineConfig(
      memorySize: 64 << 20, cpus: 1, boot: .firmware(path: "fw.bin"), realm: realm, console: console, entropy: entropy)
    let memory = try GuestMemory(ranges: [(MemoryMap.ramBase, 64 << 20)])
    return try MachineDevices.make(
      config: config, disks: [], memory: memory, output: NoOutput(), ipa: IPALayout(bits: 40, isRealm: realm),
      interrupt: { _ in RecordingInterruptLine() })
  }

  /// The devices take PCI slots in the order of the machine's device list: disks, console, entropy.
  @Test func devicesTakeSlotsInListOrder() throws {
    let both = try make(console: .virtio, entropy: true, realm: false)
    #expect(deviceID(both, slot: 0) == UInt64(VirtioPCIID.modernDevice(.console)))
    #expect(deviceID(both, slot: 1) == UInt64(VirtioPCIID.modernDevice(.entropy)))
    #expect(deviceID(both, slot: 2) == 0xFFFF)
    let entropyOnly = try make(console: .serial, entropy: true, realm: true)
    #expect(deviceID(entropyOnly, slot: 0) == UInt64(VirtioPCIID.modernDevice(.entropy)))
    let none = try make(console: .serial, entropy: false, realm: false)
    #expect(deviceID(none, slot: 0) == 0xFFFF)
  }

  /// Slots that map to the same INTx SPI share one line (a wired OR), not one line each: six
  /// functions get the four SPIs once each.
  @Test func slotsShareTheirINTxLines() throws {
    let scratch = ScratchDirectory()
    var config = MachineConfig(memorySize: 64 << 20, cpus: 1, boot: .firmware(path: "fw.bin"), console: .virtio, entropy: true)
    config.shares = (0..<4).map { ShareConfig(path: scratch.path, tag: "s\($0)") }
    let memory = try GuestMemory(ranges: [(MemoryMap.ramBase, 64 << 20)])
    let asked = RecordingInterruptLine()
    var spis: [UInt32] = []
    let devices = try MachineDevices.make(
      config: config, disks: [], shares: try MachineDevices.openShares(config), memory: memory, output: NoOutput(),
      ipa: IPALayout(bits: 40, isRealm: false), interrupt: { spis.append($0); return asked })
    #expect(deviceID(devices, slot: 5) == UInt64(VirtioPCIID.modernDevice(.ninePTransport)))
    #expect(spis == (0..<4).map { MemoryMap.pciINTxSPIBase + $0 })
  }

  /// Each --share is a virtio-9p function after the other devices; a missing directory is refused
  /// when the machine's files are opened, with its path.
  @Test func sharesFollowTheOtherDevices() throws {
    let scratch = ScratchDirectory()
    var config = MachineConfig(memorySize: 64 << 20, cpus: 1, boot: .firmware(path: "fw.bin"), entropy: true)
    config.shares = [ShareConfig(path: scratch.path, tag: "a"), ShareConfig(path: scratch.path, tag: "b", readOnly: true)]
    let directories = try MachineDevices.openShares(config)
    #expect(directories.map(\.readOnly) == [false, true])
    let memory = try GuestMemory(ranges: [(MemoryMap.ramBase, 64 << 20)])
    let devices = try MachineDevices.make(
      config: config, disks: [], shares: directories, memory: memory, output: NoOutput(), ipa: IPALayout(bits: 40, isRealm: false),
      interrupt: { _ in RecordingInterruptLine() })
    #expect(deviceID(devices, slot: 0) == UInt64(VirtioPCIID.modernDevice(.entropy)))
    #expect(deviceID(devices, slot: 1) == UInt64(VirtioPCIID.modernDevice(.ninePTransport)))
    #expect(deviceID(devices, slot: 2) == UInt64(VirtioPCIID.modernDevice(.ninePTransport)))
    #expect(deviceID(devices, slot: 3) == 0xFFFF)
    config.shares = [ShareConfig(path: scratch.path("missing"), tag: "a")]
    #expect(throws: MachineDevicesError.self) { try MachineDevices.openShares(config) }
    do {
      _ = try MachineDevices.openShares(config)
    } catch {
      #expect(error.description == "--share \(scratch.path("missing")): cannot open the directory: No such file or directory")
    }
  }
}
