import Devices
import Testing

/// A function with one 64-bit BAR whose registers echo offsets, to check routing.
final class EchoFunction: PCIFunction, @unchecked Sendable {
  var config: PCIConfigSpace
  var writes: [(Int, UInt64, UInt64)] = []

  init(barAddress: UInt64) {
    config = PCIConfigSpace(identity: PCIIdentity(
      vendorID: 0x1AF4, deviceID: 0x1042, revision: 1, classCode: 0x01_80_00, subsystemVendorID: 0x1AF4, subsystemID: 2))
    config.addMemoryBAR64(index: 0, size: 0x4000, address: barAddress)
  }

  func readConfig(offset: Int, size: Int) -> UInt32 { config.read(offset: offset, size: size) }
  func writeConfig(offset: Int, size: Int, value: UInt32) { config.write(offset: offset, size: size, value: value) }
  var barMappings: [PCIBARMapping] { config.mappings }
  func readBAR(_ bar: Int, offset: UInt64, size: Int) -> UInt64 { offset }
  func writeBAR(_ bar: Int, offset: UInt64, size: Int, value: UInt64) { writes.append((bar, offset, value)) }
}

@Suite struct PCIConfigSpaceTests {
  @Test func identityAndReadOnlyRegisters() {
    var space = PCIConfigSpace(identity: PCIIdentity(
      vendorID: 0x1AF4, deviceID: 0x1043, revision: 1, classCode: 0x07_80_00, subsystemVendorID: 0x1AF4, subsystemID: 3))
    #expect(space.read(offset: 0, size: 4) == 0x1043_1AF4)
    #expect(space.read(offset: 8, size: 4) == 0x0780_0001)
    #expect(space.read(offset: 0x2C, size: 4) == 0x0003_1AF4)
    #expect(space.read(offset: 0x3D, size: 1) == 1)
    #expect(space.read(offset: 0x0E, size: 1) == 0)  // type 0 header
    space.write(offset: 0, size: 4, value: 0xDEAD_BEEF)
    space.write(offset: 8, size: 4, value: 0)
    #expect(space.read(offset: 0, size: 4) == 0x1043_1AF4)
    #expect(space.read(offset: 8, size: 4) == 0x0780_0001)
    // Misaligned, odd-sized and out-of-range accesses read as all ones and write nothing.
    #expect(space.read(offset: 1, size: 2) == 0xFFFF_FFFF)
    #expect(space.read(offset: 4096, size: 4) == 0xFFFF_FFFF)
    #expect(space.read(offset: -4, size: 4) == 0xFFFF_FFFF)
    space.write(offset: 4094, size: 4, value: 1)
  }

  @Test func commandRegisterAndInterruptLine() {
    var space = PCIConfigSpace(identity: PCIIdentity(
      vendorID: 1, deviceID: 2, revision: 0, classCode: 0, subsystemVendorID: 0, subsystemID: 0))
    #expect(!space.memoryEnabled)
    space.write(offset: 4, size: 2, value: 0xFFFF)
    #expect(space.command == PCIConfigSpace.Command.memorySpace | PCIConfigSpace.Command.busMaster | PCIConfigSpace.Command.interruptDisable)
    #expect(space.memoryEnabled && space.interruptDisabled)
    space.write(offset: 0x3C, size: 1, value: 0x2A)
    #expect(space.read(offset: 0x3C, size: 1) == 0x2A)
    #expect(space.read(offset: 0x3D, size: 1) == 1)
  }

  @Test func capabilityList() {
    var space = PCIConfigSpace(identity: PCIIdentity(
      vendorID: 1, deviceID: 2, revision: 0, classCode: 0, subsystemVendorID: 0, subsystemID: 0))
    #expect(space.read(offset: 6, size: 2) & 0x10 == 0)
    let first = space.addCapability(id: 0x09, body: [16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x38, 0, 0, 0])
    let second = space.addCapability(id: 0x09, body: [20, 2, 0, 0, 0, 0, 0, 0x30, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0])
    #expect(first == 0x40)
    #expect(second == 0x50)
    #expect(space.read(offset: 6, size: 2) & 0x10 != 0)
    #expect(space.read(offset: 0x34, size: 1) == 0x40)
    #expect(space.read(offset: 0x41, size: 1) == 0x50)
    #expect(space.read(offset: 0x51, size: 1) == 0)
    #expect(space.read(offset: 0x53, size: 1) == 2)
    space.write(offset: 0x41, size: 1, value: 0)  // read-only
    #expect(space.read(offset: 0x41, size: 1) == 0x50)
  }

  @Test func barSizingAndMoving() {
    var space = PCIConfigSpace(identity: PCIIdentity(
      vendorID: 1, deviceID: 2, revision: 0, classCode: 0, subsystemVendorID: 0, subsystemID: 0))
    space.addMemoryBAR64(index: 0, size: 0x4000, address: 0x5000_4000)
    #expect(space.read(offset: 0x10, size: 4) == 0x5000_4004)  // 64-bit memory BAR
    #expect(space.read(offset: 0x14, size: 4) == 0)
    #expect(space.read(offset: 0x18, size: 4) == 0)  // no BAR2
    #expect(space.mappings.isEmpty)  // memory decoding off
    space.write(offset: 4, size: 2, value: 2)
    #expect(space.mappings == [PCIBARMapping(bar: 0, base: 0x5000_4000, size: 0x4000)])
    // Probe: all ones, read back the size mask, restore.
    space.write(offset: 0x10, size: 4, value: 0xFFFF_FFFF)
    space.write(offset: 0x14, size: 4, value: 0xFFFF_FFFF)
    #expect(space.read(offset: 0x10, size: 4) == 0xFFFF_C004)
    #expect(space.read(offset: 0x14, size: 4) == 0xFFFF_FFFF)
    // Move above 4 GiB, with byte writes into the low dword.
    space.write(offset: 0x10, size: 4, value: 0)
    space.write(offset: 0x11, size: 1, value: 0x80)
    space.write(offset: 0x14, size: 4, value: 0x1)
    #expect(space.barAddress(0) == 0x1_0000_8000)
    #expect(space.mappings == [PCIBARMapping(bar: 0, base: 0x1_0000_8000, size: 0x4000)])
    // Unaligned addresses are masked to the BAR's size.
    space.write(offset: 0x10, size: 4, value: 0x1234_5678)
    #expect(space.barAddress(0) == 0x1_1234_4000)
  }
}

@Suite struct PCIHostBridgeTests {
  @Test func ecamRoutesToSlotsAndMissingSlotsReadAllOnes() {
    let function = EchoFunction(barAddress: 0x5000_0000)
    let bridge = PCIHostBridge(functions: [2: function])
    #expect(bridge.read(offset: 2 << 15, size: 4) == 0x1042_1AF4)
    #expect(bridge.read(offset: 0, size: 4) == 0xFFFF_FFFF)
    #expect(bridge.read(offset: 2 << 15 | 1 << 12, size: 2) == 0xFFFF)  // function 1
    #expect(bridge.read(offset: 2 << 15 | 1, size: 2) == 0xFFFF)  // misaligned
    bridge.write(offset: 2 << 15 | 4, size: 2, value: 2)
    #expect(function.config.memoryEnabled)
  }

  @Test func memoryWindowFollowsBARs() {
    let first = EchoFunction(barAddress: 0x5000_0000)
    let second = EchoFunction(barAddress: 0x5000_4000)
    let bridge = PCIHostBridge(functions: [0: first, 1: second])
    let window = bridge.memoryWindow(base: 0x5000_0000)
    #expect(window.read(offset: 0x10, size: 4) == 0xFFFF_FFFF)  // decoding off
    first.writeConfig(offset: 4, size: 2, value: 2)
    second.writeConfig(offset: 4, size: 2, value: 2)
    #expect(window.read(offset: 0x10, size: 4) == 0x10)
    #expect(window.read(offset: 0x4010, size: 4) == 0x10)
    window.write(offset: 0x4020, size: 2, value: 7)
    #expect(second.writes.count == 1 && second.writes[0].1 == 0x20)
    // An access straddling the end of a BAR is refused.
    #expect(window.read(offset: 0x3FFC, size: 8) == UInt64.max)
    // Guest moves the second BAR.
    second.writeConfig(offset: 0x10, size: 4, value: 0x5100_0000)
    #expect(window.read(offset: 0x4010, size: 4) == 0xFFFF_FFFF)
    #expect(window.read(offset: 0x100_0010, size: 4) == 0x10)
    #expect(window.read(offset: UInt64.max - 2, size: 1) == 0xFF)  // no overflow
  }
}
