// libFuzzer entry for the virtio-pci transport's register file (`Scripts/fuzz-devices --target
// virtio-pci`), with a virtio-console behind it and 4 MiB of guest RAM for its queues: common
// configuration, notify, ISR and device configuration accesses and configuration space, in any order;
// queue setup with arbitrary addresses and sizes, status transitions and resets.
//
// Input: [0] log2 of the console's queue size (0...8), [1] bit 0: a Realm (ACCESS_PLATFORM required,
// shared bit 1 << 40 masked off addresses), then a sequence of operations, each an op byte then its
// arguments:
//   0 BAR read       where (bits 0-1 region: common, ISR, device config, notify; bit 2: raw u16
//                    offset instead of region + byte), offset, size
//   1 BAR write      where, offset, size, value (size bytes)
//   2 config read    offset (u16 % 4096), size (1, 2, 4, 8 or 3), through the ECAM host bridge
//   3 config write   offset, size, value (u32)
//   4 RAM write      offset (u32), count n (u8), n bytes
//   5 queue setup    queue select (u16), size, descriptor table, driver, device areas (u32 each, see
//                    FuzzRAM.address, with the shared bit when bit 0 of a flag byte is set), enable
//   6 negotiate      status bytes written in turn (ACKNOWLEDGE, DRIVER), driver features (u64), then
//                    FEATURES_OK and DRIVER_OK as the flags byte says
//   7 host input     count (u16 % 8192) bytes for the console
// Invariants: reads return values of the access size; the INTx line is driven only on a change and
// is low right after ISR is read (which reads 0 a second time); status 0 resets every register the
// driver set; FEATURES_OK stays set only for acceptable features; identity and BAR size never change;
// the console never holds more input than its capacity.
import Devices
import GuestMemory
@testable import VirtIO
import FirmwareCore

let barBase: UInt64 = 0x1000_0000
let sharedBit: UInt64 = 1 << 40

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  FuzzRAM.reset()
  var input = FuzzInput(data, size)
  let queueSize = UInt16(1) << UInt16(input.u8() % 9)
  let realm = input.u8() & 1 == 1
  let output = CountingOutput(chunkLimit: VirtioConsole.outputChunk)
  let console = VirtioConsole(output: output, queueSize: queueSize)
  let line = CheckedLine()
  let transport = VirtioPCITransport(
    device: console, memory: FuzzRAM.memory, interrupt: line, barAddress: barBase,
    requireAccessPlatform: realm, addressMask: realm ? ~sharedBit : .max)
  let bridge = PCIHostBridge(functions: [0: transport])
  let common = VirtioPCITransport.Layout.common

  func where_() -> UInt64 {
    let selector = input.u8()
    if selector & 4 != 0 { return UInt64(input.u16()) }
    return UInt64(selector & 3) << 12 | UInt64(input.u8())
  }
  func read(_ offset: UInt64, _ size: Int) -> UInt64 {
    let value = transport.readBAR(0, offset: offset, size: size)
    checkRead(value, size: size, "BAR0 0x\(String(offset, radix: 16))")
    return value
  }
  func write(_ offset: UInt64, _ size: Int, _ value: UInt64) {
    transport.writeBAR(0, offset: offset, size: size, value: value & accessMask(size))
    if offset == common + 0x14 && size == 1 && value & 0xFF == 0 { checkReset() }
  }
  func checkReset() {
    invariant(read(common + 0x14, 1) == 0, "device_status not 0 after a reset")
    invariant(read(common + 0x16, 2) == 0, "queue_select not 0 after a reset")
    write(common + 0x08, 4, 0)
    invariant(read(common + 0x0C, 4) == 0, "driver features kept over a reset")
    for queue in 0..<2 {
      write(common + 0x16, 2, UInt64(queue))
      invariant(read(common + 0x1C, 2) == 0, "queue \(queue) enabled after a reset")
      invariant(read(common + 0x18, 2) == UInt64(queueSize), "queue \(queue) size not reset")
      invariant(read(common + 0x20, 8) == 0 && read(common + 0x28, 8) == 0 && read(common + 0x30, 8) == 0,
                "queue \(queue) addresses kept over a reset")
    }
    write(common + 0x16, 2, 0)
  }
  func configSize() -> Int { let s = input.u8() % 5; return s == 4 ? 3 : 1 << Int(s) }

  while !input.isAtEnd {
    switch input.u8() % 8 {
    case 0:
      let offset = where_()
      let before = line.level
      let value = read(offset, input.accessSize())
      if offset == VirtioPCITransport.Layout.isr {
        invariant(!line.level, "INTx still high after ISR was read (was \(before), ISR 0x\(String(value, radix: 16)))")
        invariant(read(offset, 1) == 0, "ISR not cleared by a read")
      }
    case 1:
      let offset = where_()
      let size = input.accessSize()
      write(offset, size, input.le(size))
    case 2:
      let offset = Int(input.u16() % 4096)
      let size = configSize()
      checkRead(bridge.read(offset: UInt64(offset), size: size), size: size, "config 0x\(String(offset, radix: 16))")
    case 3:
      let offset = Int(input.u16() % 4096)
      let size = configSize()
      bridge.write(offset: UInt64(offset), size: size, value: UInt64(input.u32()))
    case 4:
      let offset = input.u32()
      FuzzRAM.write(input.take(Int(input.u8())), offset: offset)
    case 5:
      write(common + 0x16, 2, UInt64(input.u16() % 4))
      write(common + 0x18, 2, UInt64(input.u16()))
      let flags = input.u8()
      for field in [UInt64(0x20), 0x28, 0x30] {
        write(common + field, 8, FuzzRAM.address(input.u32()) | (flags & 1 != 0 ? sharedBit : 0))
      }
      write(common + 0x1C, 2, UInt64(flags >> 1 & 1))
    case 6:
      let flags = input.u8()
      write(common + 0x14, 1, UInt64(VirtioStatus.acknowledge))
      write(common + 0x14, 1, UInt64(VirtioStatus.acknowledge | VirtioStatus.driver))
      let features = input.u64()
      let chosen = flags & 4 != 0 ? transport.offeredFeatures & features : features
      write(common + 0x08, 4, 0)
      write(common + 0x0C, 4, chosen & 0xFFFF_FFFF)
      write(common + 0x08, 4, 1)
      write(common + 0x0C, 4, chosen >> 32)
      var status = VirtioStatus.acknowledge | VirtioStatus.driver
      if flags & 1 != 0 { status |= VirtioStatus.featuresOK; write(common + 0x14, 1, UInt64(status)) }
      if flags & 2 != 0 { status |= VirtioStatus.driverOK; write(common + 0x14, 1, UInt64(status)) }
    default:
      let count = Int(input.u16() % 8192)
      let held = console.heldInputCount
      let taken = console.receive([UInt8](repeating: 0x41, count: count))
      invariant(taken == min(count, VirtioConsole.inputCapacity - held), "receive took \(taken) of \(count)")
    }
    let status = UInt8(read(common + 0x14, 1))
    if status & VirtioStatus.featuresOK != 0 {
      invariant(transport.featuresAcceptable(transport.negotiatedFeatures), "FEATURES_OK with unacceptable features")
    }
    invariant(transport.readConfig(offset: 0, size: 4) == 0x1043_1AF4, "PCI identity changed")
    invariant(console.heldInputCount <= VirtioConsole.inputCapacity, "console holds \(console.heldInputCount) bytes")
  }
  return 0
}
