import Testing
import FirmwareCore

@Suite struct BootEntryTests {
  func entry(_ id: String, _ text: String) throws -> BootEntry {
    try BootEntry(id: Array(id.utf8), text: Array(text.utf8))
  }

  @Test func parsesKeysRepeatsAndComments() throws {
    let e = try entry("debian", """
      # comment
      title   Debian GNU/Linux
      version 6.12.1
      sort-key debian
      linux /vmlinuz-6.12
      initrd /intel-ucode.img
      initrd /initrd.img-6.12
      options root=/dev/vda2
      options quiet\tsplash
      devicetree /ignored.dtb

      """)
    #expect(e.title == Array("Debian GNU/Linux".utf8))
    #expect(e.version == Array("6.12.1".utf8))
    #expect(e.linux == Array("/vmlinuz-6.12".utf8))
    #expect(e.initrds == [Array("/intel-ucode.img".utf8), Array("/initrd.img-6.12".utf8)])
    #expect(e.options == Array("root=/dev/vda2 quiet\tsplash".utf8))
  }

  @Test func rejectsBadLinesAndMissingLinux() {
    #expect(throws: BootEntryError.missingLinux) { try entry("a", "title x\n") }
    #expect(throws: BootEntryError.malformedLine(2)) { try entry("a", "linux /k\ntitle\n") }
    #expect(throws: BootEntryError.malformedLine(1)) { try entry("a", "linux /k\u{1}\n") }
    #expect(throws: BootEntryError.malformedLine(1)) { try LoaderConfiguration(text: Array("default\n".utf8)) }
  }

  @Test func titleDefaultsToID() throws {
    #expect(try entry("abc", "linux /k").title == Array("abc".utf8))
  }

  @Test func ordersAndChoosesTheDefault() throws {
    let a = try entry("a", "linux /a\nversion 1")
    let b = try entry("b", "linux /b\nversion 2")
    let z = try entry("z", "linux /z\nsort-key 0")
    let none = LoaderConfiguration()
    // Sort-key first, then version descending, then id.
    #expect(try BootEntrySelection.choose([a, b, z], configuration: none).id == Array("z".utf8))
    #expect(try BootEntrySelection.choose([a, b], configuration: none).id == Array("b".utf8))
    let conf = try LoaderConfiguration(text: Array("timeout 3\ndefault a.conf\n".utf8))
    #expect(try BootEntrySelection.choose([a, b, z], configuration: conf).id == Array("a".utf8))
    let glob = try LoaderConfiguration(text: Array("default b*\n".utf8))
    #expect(try BootEntrySelection.choose([a, b, z], configuration: glob).id == Array("b".utf8))
    // A default naming no entry falls back to the order; an explicit request must exist.
    let missing = try LoaderConfiguration(text: Array("default nope\n".utf8))
    #expect(try BootEntrySelection.choose([a, b, z], configuration: missing).id == Array("z".utf8))
    #expect(try BootEntrySelection.choose([a, b, z], configuration: conf, requested: Array("b".utf8)).id == Array("b".utf8))
    #expect(throws: BootEntryError.entryNotFound) {
      try BootEntrySelection.choose([a], configuration: none, requested: Array("q".utf8))
    }
    #expect(throws: BootEntryError.noEntries) { try BootEntrySelection.choose([], configuration: none) }
  }
}

@Suite struct ArmImageHeaderTests {
  @Test func acceptsAValidHeader() throws {
    let k = fakeKernel(size: 4096, textOffset: 0, imageSize: 0x20_0000)
    let h = try ArmImageHeader(bytes: k, fileSize: 4096)
    #expect(h.textOffset == 0 && h.imageSize == 0x20_0000)
    #expect(h.loadAddress(atOrAbove: 0x4012_3456) == 0x4020_0000)
    let old = try ArmImageHeader(bytes: fakeKernel(size: 4096, imageSize: 0), fileSize: 4096)
    #expect(old.textOffset == 0x80000 && old.imageSize == 4096)
  }

  @Test func rejectsBadImages() {
    var k = fakeKernel(size: 4096)
    #expect(throws: KernelImageError.tooSmall(fileSize: 60)) { try ArmImageHeader(bytes: Array(k[0..<60]), fileSize: 60) }
    #expect(throws: KernelImageError.badMagic) {
      let script = Array("#!/bin/sh\necho this is a shell script, a text file and not a kernel Image\n".utf8)
      return try ArmImageHeader(bytes: script, fileSize: UInt64(script.count))
    }
    k[56] = 0
    #expect(throws: KernelImageError.badMagic) { try ArmImageHeader(bytes: k, fileSize: 4096) }
    var be = fakeKernel(size: 4096)
    be[24] |= 1
    #expect(throws: KernelImageError.bigEndian) { try ArmImageHeader(bytes: be, fileSize: 4096) }
    let small = fakeKernel(size: 4096, imageSize: 100)
    #expect(throws: KernelImageError.imageSizeTooSmall(imageSize: 100, fileSize: 4096)) {
      try ArmImageHeader(bytes: small, fileSize: 4096)
    }
    let odd = fakeKernel(size: 4096, textOffset: 0x123)
    #expect(throws: KernelImageError.implausibleLayout(textOffset: 0x123, imageSize: 0x11000)) {
      try ArmImageHeader(bytes: odd, fileSize: 4096)
    }
  }

  /// Only the header is needed: a mapped file's first page, a slice or an array.
  @Test func readsTheHeaderFromAnyByteCollection() throws {
    let k = fakeKernel(size: 4096, textOffset: 0x8_0000, imageSize: 0x300_0000)
    let fromSlice = try ArmImageHeader(bytes: k[0..<64], fileSize: 4096)
    let fromBuffer = try k.withUnsafeBytes { (b) throws(KernelImageError) in try ArmImageHeader(bytes: b, fileSize: 4096) }
    #expect(fromSlice == fromBuffer && fromSlice.textOffset == 0x8_0000 && fromSlice.imageSize == 0x300_0000)
    // A slice not starting at 0: offsets count from its start.
    let shifted = [UInt8](repeating: 0xEE, count: 7) + k
    #expect(try ArmImageHeader(bytes: shifted[7...], fileSize: 4096) == fromSlice)
  }
}

@Suite struct BootLayoutTests {
  @Test func placesKernelInitrdAndDTBAboveTheFirmware() throws {
    let header = try ArmImageHeader(bytes: fakeKernel(size: 4096, imageSize: 0x300_0000), fileSize: 4096)
    let ram = [MemoryRange(base: 0x4000_0000, size: 512 << 20)]
    let l = try BootLayout(memory: ram, firmwareEnd: 0x4090_0000, kernel: header, initrdSize: 0x10_0001,
                           deviceTreeCapacity: 0x2000)
    #expect(l.kernel == 0x40A0_0000 && l.kernelEnd == 0x43A0_0000)
    #expect(l.initrd == 0x43A0_0000)
    #expect(l.deviceTree == 0x43C0_0000)
    #expect(throws: BootLayoutError.self) {
      try BootLayout(memory: [MemoryRange(base: 0x4000_0000, size: 32 << 20)], firmwareEnd: 0x4090_0000, kernel: header,
                     initrdSize: 0, deviceTreeCapacity: 0x2000)
    }
    #expect(throws: BootLayoutError.noRAMAfterFirmware) {
      try BootLayout(memory: [MemoryRange(base: 0x8000_0000, size: 1 << 30)], firmwareEnd: 0x4090_0000, kernel: header,
                     initrdSize: 0, deviceTreeCapacity: 0x2000)
    }
  }
}

@Suite struct BootEntryCommandLineTests {
  @Test func optionsThenTheMachinesBootArguments() throws {
    var e = try BootEntry(id: Array("e".utf8), text: Array("linux /vmlinuz\noptions root=/dev/vda2 ro\n".utf8))
    #expect(e.commandLine(appending: []) == Array("root=/dev/vda2 ro".utf8))
    #expect(e.commandLine(appending: Array("console=ttyAMA0".utf8)) == Array("root=/dev/vda2 ro console=ttyAMA0".utf8))
    e.options = []
    #expect(e.commandLine(appending: Array("console=ttyAMA0".utf8)) == Array("console=ttyAMA0".utf8))
    #expect(e.commandLine(appending: []).isEmpty)
  }

  @Test func ucs2FromUTF8() {
    #expect(ByteString.ucs2(fromUTF8: Array("root=/dev/vda2 é€".utf8)) == Array("root=/dev/vda2 é€".utf16))
    // Beyond the BMP, a stray continuation byte, a cut sequence: U+FFFD each.
    #expect(ByteString.ucs2(fromUTF8: Array("a😀b".utf8)) == [0x61, 0xFFFD, 0x62])
    #expect(ByteString.ucs2(fromUTF8: [0x80, 0x61, 0xE2, 0x82]) == [0xFFFD, 0x61, 0xFFFD])
  }
}
