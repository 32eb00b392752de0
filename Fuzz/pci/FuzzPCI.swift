// libFuzzer entry for PCI configuration space (`Scripts/fuzz-devices --target pci`): ECAM reads and
// writes through the host bridge at any offset, size and value, BAR sizing and moves, and accesses
// through the PCI memory window, which must follow the BARs wherever the guest puts them.
//
// Two functions (slots 0 and 5) with 64-bit memory BARs of 16 B, 16 KiB and 1 MiB and a capability
// list. Input: a sequence of operations, each an op byte then its arguments:
//   0 ECAM read       offset (u32, any bus offset), size (1, 2, 4, 8 or 3)
//   1 ECAM write      offset, size, value (u32)
//   2 BAR sizing      function, BAR (0...5): all ones written, read back, old value written back
//   3 BAR move        function, BAR pair (0, 2, 4), address (u64), command (u16)
//   4 window read     offset in the 256 MiB window (u32), size
//   5 window write    offset, size, value (u64)
// Invariants: reads return values of the access size; identity, header type and capability list
// never change; the command register holds only implemented bits; a sized BAR reads back its size
// mask and is restored exactly; a moved BAR reads back the address aligned to its size; decoding
// BARs are aligned, non-zero and do not wrap; a window access reaches a BAR only inside it.
import Devices

final class FuzzFunction: PCIFunction, @unchecked Sendable {
  static let barSizes: [Int: UInt64] = [0: 16, 2: 16 << 10, 4: 1 << 20]
  let identity: PCIIdentity
  var config: PCIConfigSpace
  let capabilities: [UInt8]

  init(deviceID: UInt16) {
    identity = PCIIdentity(vendorID: 0x1AF4, deviceID: deviceID, revision: 1, classCode: 0x07_80_00,
                           subsystemVendorID: 0x1AF4, subsystemID: 3)
    var config = PCIConfigSpace(identity: identity, interruptPin: 1)
    for (index, size) in Self.barSizes { config.addMemoryBAR64(index: index, size: size, address: 0x1000_0000 + UInt64(index) << 20) }
    config.addCapability(id: 0x09, body: [16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x38, 0, 0, 0])
    config.addCapability(id: 0x09, body: [20, 2, 0, 0, 0, 0x30, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0, 0])
    capabilities = (0..<0xC0).map { [config] in UInt8(config.read(offset: 0x40 + $0, size: 1)) }
    self.config = config
  }

  func readConfig(offset: Int, size: Int) -> UInt32 { config.read(offset: offset, size: size) }
  func writeConfig(offset: Int, size: Int, value: UInt32) { config.write(offset: offset, size: size, value: value) }
  var barMappings: [PCIBARMapping] { config.mappings }

  func readBAR(_ bar: Int, offset: UInt64, size: Int) -> UInt64 {
    checkInside(bar, offset, size)
    return (offset &* 0x9E37_79B9 ^ UInt64(bar)) & accessMask(size)
  }

  func writeBAR(_ bar: Int, offset: UInt64, size: Int, value: UInt64) { checkInside(bar, offset, size) }

  private func checkInside(_ bar: Int, _ offset: UInt64, _ size: Int) {
    guard let mapping = config.mappings.first(where: { $0.bar == bar }) else {
      invariant(false, "window access to BAR \(bar), which does not decode")
      return
    }
    invariant(offset < mapping.size && UInt64(size) <= mapping.size - offset,
              "window access of \(size) bytes at \(offset) in BAR \(bar) of \(mapping.size) bytes")
  }

  /// The invariants of one function's configuration space (`full`: the whole capability list too).
  func check(full: Bool) {
    if full { checkIdentity() }
    invariant(config.command & ~(PCIConfigSpace.Command.memorySpace | PCIConfigSpace.Command.busMaster
                                 | PCIConfigSpace.Command.interruptDisable) == 0, "command 0x\(String(config.command, radix: 16))")
    let mappings = config.mappings
    invariant(mappings.isEmpty || config.memoryEnabled, "BARs decode with memory space disabled")
    for mapping in mappings {
      invariant(mapping.size == Self.barSizes[mapping.bar], "BAR \(mapping.bar) has size \(mapping.size)")
      invariant(mapping.base != 0 && mapping.base % mapping.size == 0 && mapping.base <= UInt64.max - mapping.size,
                "BAR \(mapping.bar) decodes at 0x\(String(mapping.base, radix: 16))")
    }
  }

  private func checkIdentity() {
    invariant(config.read(offset: 0, size: 4) == UInt32(identity.vendorID) | UInt32(identity.deviceID) << 16, "identity changed")
    invariant(config.read(offset: 8, size: 4) == 1 | identity.classCode << 8, "revision or class changed")
    invariant(config.read(offset: 0x0E, size: 1) == 0, "header type changed")
    invariant(config.read(offset: 0x34, size: 1) == 0x40, "capability pointer changed")
    invariant(config.read(offset: 0x3D, size: 1) == 1, "interrupt pin changed")
    for index in 0..<0xC0 where UInt8(config.read(offset: 0x40 + index, size: 1)) != capabilities[index] {
      invariant(false, "capability byte 0x\(String(0x40 + index, radix: 16)) changed")
    }
  }
}

let windowBase: UInt64 = 0x1000_0000
let windowSize: UInt64 = 0x1000_0000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  var input = FuzzInput(data, size)
  let functions = [0: FuzzFunction(deviceID: 0x1043), 5: FuzzFunction(deviceID: 0x1042)]
  let bridge = PCIHostBridge(functions: functions)
  let window = bridge.memoryWindow(base: windowBase)
  func ecam(_ slot: Int, _ register: Int) -> UInt64 { UInt64(slot) << 15 | UInt64(register) }
  func readSize() -> Int { let s = input.u8() % 5; return s == 4 ? 3 : 1 << Int(s) }

  while !input.isAtEnd {
    switch input.u8() % 6 {
    case 0:
      let offset = UInt64(input.u32())
      let size = readSize()
      checkRead(bridge.read(offset: offset, size: size), size: size, "ECAM 0x\(String(offset, radix: 16))")
    case 1:
      let offset = UInt64(input.u32())
      let size = readSize()
      bridge.write(offset: offset, size: size, value: UInt64(input.u32()))
    case 2:
      let slot = input.u8() & 1 == 0 ? 0 : 5
      let bar = Int(input.u8() % 6)
      let register = 0x10 + 4 * bar
      let old = bridge.read(offset: ecam(slot, register), size: 4)
      bridge.write(offset: ecam(slot, register), size: 4, value: 0xFFFF_FFFF)
      let probed = bridge.read(offset: ecam(slot, register), size: 4)
      let expected: UInt64
      if let size = FuzzFunction.barSizes[bar] {
        expected = 0xFFFF_FFF0 & ~(size - 1) | 4
      } else if let size = FuzzFunction.barSizes[bar - 1] {
        expected = (~(size - 1) >> 32) & 0xFFFF_FFFF
      } else {
        expected = 0
      }
      invariant(probed == expected, "BAR \(bar) sized as 0x\(String(probed, radix: 16)), expected 0x\(String(expected, radix: 16))")
      bridge.write(offset: ecam(slot, register), size: 4, value: old)
      invariant(bridge.read(offset: ecam(slot, register), size: 4) == old, "BAR \(bar) not restored after sizing")
    case 3:
      let slot = input.u8() & 1 == 0 ? 0 : 5
      let bar = Int(input.u8() % 3) * 2
      let raw = input.u64()
      let address = raw & 0x8000_0000_0000_0000 == 0 ? windowBase + raw % windowSize : raw
      let command = UInt64(input.u16())
      bridge.write(offset: ecam(slot, 0x10 + 4 * bar), size: 4, value: address & 0xFFFF_FFFF)
      bridge.write(offset: ecam(slot, 0x14 + 4 * bar), size: 4, value: address >> 32)
      bridge.write(offset: ecam(slot, 4), size: 2, value: command)
      let size = FuzzFunction.barSizes[bar]!
      let readBack = bridge.read(offset: ecam(slot, 0x10 + 4 * bar), size: 4) | bridge.read(offset: ecam(slot, 0x14 + 4 * bar), size: 4) << 32
      invariant(readBack == address & ~(size - 1) & ~0xF | 4, "BAR \(bar) moved to 0x\(String(address, radix: 16)) reads 0x\(String(readBack, radix: 16))")
      invariant(functions[slot]!.config.barAddress(bar) == address & ~(size - 1) & ~0xF, "BAR \(bar) address differs from what reads back")
    case 4:
      let offset = UInt64(input.u32()) % windowSize
      let size = input.accessSize()
      checkRead(window.read(offset: offset, size: size), size: size, "window 0x\(String(offset, radix: 16))")
    default:
      let offset = UInt64(input.u32()) % windowSize
      let size = input.accessSize()
      window.write(offset: offset, size: size, value: input.u64() & accessMask(size))
    }
    for function in functions.values { function.check(full: false) }
  }
  for function in functions.values { function.check(full: true) }
  return 0
}
