import Devices
import FirmwareCore
import Foundation
import Testing
@testable import RealmVMM

/// The DTB realm-run builds, read by the firmware's own parser: what the VMM means is what the
/// firmware understands (console, memory, PSCI conduit, PCI host bridge, bootargs, boot entry).
@Suite struct FirmwareContractTests {
  func platform(_ inputs: MachineDeviceTree.Inputs) throws -> PlatformDescription {
    try PlatformDescription(tree: FirmwareCore.DeviceTree(blob: MachineDeviceTree.build(inputs)))
  }

  static let inputs = MachineDeviceTree.Inputs(
    cpus: 1, ramBase: 0x8000_0000, ramSize: 256 << 20, bootArguments: "console=hvc0 quiet", initrd: nil,
    psciMethod: "smc", console: .serial, bootEntry: "rescue")

  @Test func theFirmwareReadsWhatTheVMMWrote() throws {
    let platform = try platform(Self.inputs)
    #expect(platform.memory == [MemoryRange(base: 0x8000_0000, size: 256 << 20)])
    #expect(platform.console?.kind == .uart8250)
    #expect(platform.console?.base == 0x0100_0000)
    #expect(platform.psciConduit == .smc)
    #expect(platform.bootArguments == Array("console=hvc0 quiet".utf8))
    #expect(platform.bootEntry == Array("rescue".utf8))
    #expect(platform.pciHost?.ecamBase == 0x4000_0000)
    #expect(platform.pciHost?.windows.first?.cpuAddress == 0x5000_0000)
    #expect(platform.bootStatus == MemoryMap.bootStatusBase)
  }

  @Test func noBootEntryUnlessAsked() throws {
    var inputs = Self.inputs
    inputs.bootEntry = nil
    inputs.psciMethod = "hvc"
    let platform = try platform(inputs)
    #expect(platform.bootEntry == nil)
    #expect(platform.psciConduit == .hvc)
    #expect(platform.bootMode == .automatic)
  }

  /// `--boot-mode` reaches the firmware's boot manager by its name, for each mode.
  @Test(arguments: FirmwareBootMode.allCases)
  func theFirmwareReadsTheBootMode(_ mode: FirmwareBootMode) throws {
    var inputs = Self.inputs
    inputs.bootMode = mode == .automatic ? nil : String(decoding: mode.name, as: UTF8.self)
    #expect(try platform(inputs).bootMode == mode)
  }

  /// The firmware's C side (FirmwareSupport.h) writes the registers the VMM's page decodes.
  @Test func theFirmwareWritesTheBootStatusRegistersTheVMMReads() throws {
    let header = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Firmware/Sources/FirmwareSupport/include/FirmwareSupport.h")
    let text = try String(contentsOf: header, encoding: .utf8)
    #expect(text.contains("FW_BOOT_STATUS_CODE = 0x\(String(BootStatus.Register.failureCode, radix: 16)),"))
    #expect(text.contains("FW_BOOT_STATUS_REASON = 0x\(String(BootStatus.Register.reason, radix: 16)),"))
    #expect(PlatformDescription.bootStatusCompatible.description == "realm-run,boot-status")
  }

  /// A power-off after the firmware reported a failure ends the run as that failure.
  @Test func aPowerOffAfterAReportedFailureIsAFirmwareFailure() {
    #expect(Outcome(poweredOffAfter: nil) == .poweredOff)
    let page = BootStatus()
    for byte in "no kernel".utf8 { page.write(offset: BootStatus.Register.reason, size: 1, value: UInt64(byte)) }
    page.write(offset: BootStatus.Register.failureCode, size: 4, value: 1)
    #expect(Outcome(poweredOffAfter: page.failure) == .firmwareFailed(code: 1, reason: "no kernel"))
  }
}
