import TestSupport
import Foundation
import FirmwareCore

/// A minimal, independent DTB writer for tests (does not use FirmwareCore's serializer).
struct TestDTB {
  indirect enum Item { case node(String, [Item]); case prop(String, [UInt8]) }

  static func u32(_ values: UInt32...) -> [UInt8] {
    var b: [UInt8] = []
    for v in values { b.appendBE(UInt64(v), width: 4) }
    return b
  }
  static func str(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }
  static func strs(_ s: String...) -> [UInt8] { s.flatMap { Array($0.utf8) + [0] } }

  static func build(_ root: [Item]) -> [UInt8] {
    var structure: [UInt8] = []
    var strings: [UInt8] = []
    func pad() { while structure.count % 4 != 0 { structure.append(0) } }
    func emit(_ name: String, _ items: [Item]) {
      structure.appendBE(1, width: 4)
      structure += Array(name.utf8) + [0]
      pad()
      for case .prop(let n, let v) in items {
        structure.appendBE(3, width: 4)
        structure.appendBE(UInt64(v.count), width: 4)
        structure.appendBE(UInt64(strings.count), width: 4)
        strings += Array(n.utf8) + [0]
        structure += v
        pad()
      }
      for case .node(let n, let children) in items { emit(n, children) }
      structure.appendBE(2, width: 4)
    }
    emit("", root)
    structure.appendBE(9, width: 4)
    let rsv = 40
    let structOff = rsv + 16
    let stringsOff = structOff + structure.count
    var blob: [UInt8] = []
    for v in [0xD00D_FEED, stringsOff + strings.count, structOff, stringsOff, rsv, 17, 16, 0, strings.count, structure.count] {
      blob.appendBE(UInt64(v), width: 4)
    }
    blob += [UInt8](repeating: 0, count: 16) + structure + strings
    return blob
  }

  /// A QEMU-virt-like tree.
  static func virt(stdout: String = "/pl011@9000000", psci: String = "hvc", bootargs: String? = "quiet",
                   withChosen: Bool = true) -> [UInt8] {
    var chosen: [Item] = [.prop("stdout-path", str(stdout)), .prop("realm-run,boot-entry", str("rescue"))]
    if let bootargs { chosen.append(.prop("bootargs", str(bootargs))) }
    chosen += [.prop("linux,initrd-start", u32(0x4800_0000)), .prop("linux,initrd-end", u32(0x4810_0000))]
    var root: [Item] = [
      .prop("#address-cells", u32(2)), .prop("#size-cells", u32(2)), .prop("compatible", str("linux,dummy-virt")),
      .node("psci", [.prop("compatible", strs("arm,psci-1.0", "arm,psci-0.2")), .prop("method", str(psci))]),
      .node("memory@40000000", [.prop("device_type", str("memory")), .prop("reg", u32(0, 0x4000_0000, 0, 0x2000_0000))]),
      .node("memory@100000000", [.prop("device_type", str("memory")), .prop("reg", u32(1, 0, 0, 0x1000_0000))]),
      .node("pl011@9000000", [.prop("compatible", strs("arm,pl011", "arm,primecell")),
                              .prop("reg", u32(0, 0x0900_0000, 0, 0x1000))]),
      .node("uart@1000000", [.prop("compatible", str("ns16550a")), .prop("reg", u32(0, 0x0100_0000, 0, 0x8)),
                             .prop("reg-shift", u32(2)), .prop("reg-io-width", u32(4))]),
      .node("aliases", [.prop("serial0", str("/uart@1000000"))]),
      .node("pcie@10000000", [
        .prop("compatible", str("pci-host-ecam-generic")), .prop("device_type", str("pci")),
        .prop("#address-cells", u32(3)), .prop("#size-cells", u32(2)),
        .prop("reg", u32(0x40, 0x1000_0000, 0, 0x1000_0000)), .prop("bus-range", u32(0, 0xFF)),
        .prop("ranges", u32(0x0100_0000, 0, 0, 0, 0x3EFF_0000, 0, 0x1_0000,
                            0x0200_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0x2EFF_0000,
                            0x4300_0000, 0x80, 0, 0x80, 0, 0x80, 0)),
      ]),
    ]
    if withChosen { root.append(.node("chosen", chosen)) }
    return build(root)
  }
}

/// A fake arm64 Image: a valid 64-byte header then deterministic bytes.
func fakeKernel(size: Int, textOffset: UInt64 = 0, imageSize: UInt64? = nil) -> [UInt8] {
  var k = [UInt8](repeating: 0, count: max(size, 64))
  k.storeLE(0x1400_0010, at: 0, width: 4)
  k.storeLE(textOffset, at: 8, width: 8)
  k.storeLE(imageSize ?? UInt64(size + 0x10000), at: 16, width: 8)
  k.storeLE(0xA, at: 24, width: 8)
  k.storeLE(UInt64(ArmImageHeader.magic), at: 56, width: 4)
  var x: UInt32 = 12345
  for i in 64..<k.count { x = x &* 1_103_515_245 &+ 12345; k[i] = UInt8(truncatingIfNeeded: x >> 16) }
  return k
}

/// A block device that counts the bytes read through it.
struct CountingBlockDevice<Base: BlockDevice>: BlockDevice {
  var base: Base
  var bytesRead = 0
  var sectorCount: UInt64 { base.sectorCount }
  mutating func read(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
    bytesRead += buffer.count
    try base.read(lba: lba, into: buffer)
  }
}
