import TestSupport
import Testing
import FirmwareCore

@Suite struct DeviceTreeTests {
  @Test func readsPlatformDescription() throws {
    let p = try PlatformDescription(blob: TestDTB.virt())
    #expect(p.memory == [MemoryRange(base: 0x4000_0000, size: 0x2000_0000), MemoryRange(base: 0x1_0000_0000, size: 0x1000_0000)])
    #expect(p.console == ConsoleDevice(kind: .pl011, base: 0x0900_0000, registerShift: 0, ioWidth: 4))
    #expect(p.psciConduit == .hvc)
    #expect(p.bootArguments == Array("quiet".utf8))
    #expect(p.initrd?.start == 0x4800_0000 && p.initrd?.end == 0x4810_0000)
    #expect(p.bootEntry == Array("rescue".utf8))
    let pci = try #require(p.pciHost)
    #expect(pci.ecamBase == 0x40_1000_0000 && pci.ecamSize == 0x1000_0000)
    #expect(pci.firstBus == 0 && pci.lastBus == 255)
    #expect(pci.windows.count == 3)
    #expect(pci.windows[1] == PCIWindow(space: .memory32, prefetchable: false, pciAddress: 0x1000_0000,
                                        cpuAddress: 0x1000_0000, size: 0x2EFF_0000))
    #expect(pci.windows[2].space == .memory64 && pci.windows[2].prefetchable)
    #expect(p.bootStatus == nil)  // QEMU's virt has no boot-status page: the firmware just powers off
  }

  /// realm-run's boot-status page is found by its compatible string; a disabled node, or one too
  /// small for its two registers, is not used.
  @Test func findsTheBootStatusPage() throws {
    func page(_ items: [TestDTB.Item]) throws -> UInt64? {
      let root: [TestDTB.Item] = [.prop("#address-cells", TestDTB.u32(2)), .prop("#size-cells", TestDTB.u32(2)),
                                  .node("status@1010000", items)]
      return try PlatformDescription(blob: TestDTB.build(root)).bootStatus
    }
    let compatible = TestDTB.Item.prop("compatible", TestDTB.str("realm-run,boot-status"))
    #expect(try page([compatible, .prop("reg", TestDTB.u32(0, 0x0101_0000, 0, 0x1000))]) == 0x0101_0000)
    #expect(try page([compatible, .prop("reg", TestDTB.u32(0, 0x0101_0000, 0, 0x1000)),
                      .prop("status", TestDTB.str("disabled"))]) == nil)
    #expect(try page([compatible, .prop("reg", TestDTB.u32(0, 0x0101_0000, 0, 4))]) == nil)
    #expect(try page([.prop("compatible", TestDTB.str("other,device")), .prop("reg", TestDTB.u32(0, 0x0101_0000, 0, 0x1000))]) == nil)
  }

  @Test func resolvesStdoutAliasTo8250() throws {
    let p = try PlatformDescription(blob: TestDTB.virt(stdout: "serial0:115200n8", psci: "smc"))
    #expect(p.console == ConsoleDevice(kind: .uart8250, base: 0x0100_0000, registerShift: 2, ioWidth: 4))
    #expect(p.psciConduit == .smc)
  }

  @Test func fallsBackToFirstUARTWithoutStdoutPath() throws {
    let p = try PlatformDescription(blob: TestDTB.virt(withChosen: false))
    #expect(p.console?.kind == .pl011)
    #expect(p.bootArguments.isEmpty && p.initrd == nil)
  }

  @Test func editorSetsChosenProperties() throws {
    var tree = try DeviceTree(blob: TestDTB.virt())
    let chosen = tree.chosenNode()
    tree.setStringProperty(chosen, "bootargs", Array("console=ttyAMA0 quiet".utf8))
    tree.setU64Property(chosen, "linux,initrd-start", 0x4400_0000)
    tree.setU64Property(chosen, "linux,initrd-end", 0x4420_0000)
    let blob = tree.serialized()
    let p = try PlatformDescription(blob: blob)
    #expect(p.bootArguments == Array("console=ttyAMA0 quiet".utf8))
    #expect(p.initrd?.start == 0x4400_0000 && p.initrd?.end == 0x4420_0000)
    #expect(p.memory.count == 2 && p.pciHost?.windows.count == 3 && p.console?.kind == .pl011)
    // The rewritten blob is itself stable under another round trip.
    #expect(try DeviceTree(blob: blob).serialized() == blob)
  }

  @Test func editorCreatesChosenAndRemovesInitrd() throws {
    var tree = try DeviceTree(blob: TestDTB.virt(withChosen: false))
    let chosen = tree.chosenNode()
    tree.setStringProperty(chosen, "bootargs", Array("x".utf8))
    let p = try PlatformDescription(blob: tree.serialized())
    #expect(p.bootArguments == [120])

    var t2 = try DeviceTree(blob: TestDTB.virt())
    let c2 = t2.chosenNode()
    t2.removeProperty(c2, "linux,initrd-start")
    t2.removeProperty(c2, "linux,initrd-end")
    #expect(try PlatformDescription(blob: t2.serialized()).initrd == nil)
  }

  @Test func rejectsBadMagicAndTruncation() {
    let blob = TestDTB.virt()
    #expect(throws: DeviceTreeError.badMagic) { try DeviceTree(blob: [0, 1, 2, 3] + blob) }
    for length in stride(from: 0, to: blob.count, by: 7) {
      #expect(throws: DeviceTreeError.self) { try DeviceTree(blob: Array(blob[0..<length])) }
    }
  }

  @Test func rejectsBadTokensAndOffsets() throws {
    let good = TestDTB.virt()
    // Unknown token in place of the first BEGIN_NODE.
    var bad = good
    let structOff = Int(try #require(good.be32(at: 8)))
    bad[structOff + 3] = 7
    #expect(throws: DeviceTreeError.self) { try DeviceTree(blob: bad) }
    // Strings block extending past the end.
    let sizeStrings = try #require(good.be32(at: 32))
    var patched = good
    patched.replaceSubrange(32..<36, with: TestDTB.u32(sizeStrings + 0x1000))
    #expect(throws: DeviceTreeError.self) { try DeviceTree(blob: patched) }
  }

  @Test func survivesRandomCorruption() {
    let good = TestDTB.virt()
    var seed: UInt32 = 1
    var parsed = 0
    var refused = 0
    for _ in 0..<2000 {
      var b = good
      for _ in 0..<3 {
        seed = seed &* 1_664_525 &+ 1_013_904_223
        let i = Int(seed >> 8) % b.count
        b[i] ^= UInt8(truncatingIfNeeded: seed)
      }
      if let tree = try? DeviceTree(blob: b) {
        parsed += 1
        _ = try? PlatformDescription(tree: tree)
        // What was accepted serializes to a blob that parses again to the same bytes.
        let again = tree.serialized()
        #expect((try? DeviceTree(blob: again))?.serialized() == again)
      } else {
        refused += 1
      }
    }
    #expect(parsed > 0 && refused > 0, "parsed \(parsed), refused \(refused) of 2000")
  }

  @Test func parsesQEMUVirtDTBWhenQEMUIsInstalled() throws {
    let scratch = ScratchDirectory()
    let path = scratch.path + "/virt.dtb"
    guard runToolSucceeding("qemu-system-aarch64", ["-M", "virt,gic-version=3,dumpdtb=\(path)", "-cpu", "max",
                                                     "-m", "512", "-nographic", "-nic", "none"]) != nil else { return }
    let blob = scratch.read("virt.dtb")
    let p = try PlatformDescription(blob: blob)
    #expect(p.memory == [MemoryRange(base: 0x4000_0000, size: 512 << 20)])
    #expect(p.console?.kind == .pl011 && p.console?.base == 0x0900_0000)
    #expect(p.psciConduit == .hvc)
    #expect(p.pciHost?.ecamBase == 0x40_1000_0000)
    #expect(p.pciHost?.windows.contains { $0.space == .memory32 && $0.cpuAddress == 0x1000_0000 } == true)
    #expect(p.bootStatus == nil)
  }
}
