import Testing
import FirmwareCore

/// One EFI_MEMORY_DESCRIPTOR (version 1) of `size` bytes: type, pad, physical, virtual, pages, attribute.
private func descriptor(type: UInt32 = 5, physical: UInt64, virtual: UInt64, pages: UInt64,
                        runtime: Bool = true, size: Int = 48) -> [UInt8] {
  func le(_ v: UInt64, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
  let attribute: UInt64 = 0x8 | (runtime ? 1 << 63 : 0)
  let bytes = le(UInt64(type), 4) + le(0, 4) + le(physical, 8) + le(virtual, 8) + le(pages, 8) + le(attribute, 8)
  return bytes + [UInt8](repeating: 0xA5, count: size - bytes.count)
}

/// The firmware image on QEMU virt as the Linux stub maps it: 512 KiB of runtime code at
/// 0x4008_0000 seen at 0x2000_0000, RAM around it (not runtime, virtual address 0).
private let imageStart: UInt64 = 0x4008_0000
private let imageEnd: UInt64 = 0x4010_0000
private let linuxMap = descriptor(type: 7, physical: 0x4000_0000, virtual: 0, pages: 0x80, runtime: false)
  + descriptor(physical: imageStart, virtual: 0x2000_0000, pages: 0x80)
  + descriptor(type: 4, physical: imageEnd, virtual: 0, pages: 0x900, runtime: false)

@Suite struct RuntimeAddressMapTests {
  @Test func convertsInsideRuntimeRegionsOnly() throws {
    let map = try RuntimeAddressMap(linuxMap, descriptorSize: 48, version: 1)
    #expect(map.count == 3)
    #expect(map.convert(imageStart) == 0x2000_0000)
    #expect(map.convert(imageEnd - 8) == 0x2007_FFF8)
    #expect(map.convert(imageEnd) == nil)          // boot-services data: not converted
    #expect(map.convert(0x4000_1000) == nil)        // RAM without the runtime attribute
    #expect(map.shift(covering: imageStart, end: imageEnd) == 0x2000_0000 &- imageStart)
  }

  @Test func theImageMustBeMappedWholeAndByOneShift() throws {
    // Split in two descriptors that keep their distance: one shift.
    let split = descriptor(physical: imageStart, virtual: 0x2000_0000, pages: 0x40)
      + descriptor(type: 6, physical: imageStart + 0x4_0000, virtual: 0x2004_0000, pages: 0x40)
    #expect(try RuntimeAddressMap(split, descriptorSize: 48, version: 1).shift(covering: imageStart, end: imageEnd)
            == 0x2000_0000 &- imageStart)
    // Parts moved apart: code would not reach its data.
    let apart = descriptor(physical: imageStart, virtual: 0x2000_0000, pages: 0x40)
      + descriptor(physical: imageStart + 0x4_0000, virtual: 0x3000_0000, pages: 0x40)
    #expect(try RuntimeAddressMap(apart, descriptorSize: 48, version: 1).shift(covering: imageStart, end: imageEnd) == nil)
    // Only the first half described, or the image described without the runtime attribute.
    let half = descriptor(physical: imageStart, virtual: 0x2000_0000, pages: 0x40)
    #expect(try RuntimeAddressMap(half, descriptorSize: 48, version: 1).shift(covering: imageStart, end: imageEnd) == nil)
    let notRuntime = descriptor(physical: imageStart, virtual: 0x2000_0000, pages: 0x80, runtime: false)
    #expect(try RuntimeAddressMap(notRuntime, descriptorSize: 48, version: 1).shift(covering: imageStart, end: imageEnd) == nil)
    #expect(try RuntimeAddressMap([UInt8](), descriptorSize: 48, version: 1).shift(covering: imageStart, end: imageEnd) == nil)
  }

  @Test func descriptorStrideComesFromTheCaller() throws {
    let wide = descriptor(physical: imageStart, virtual: 0x1_0000_0000, pages: 0x80, size: 64)
    let map = try RuntimeAddressMap(wide, descriptorSize: 64, version: 1)
    #expect(map.convert(imageStart + 0x10) == 0x1_0000_0010)
    // The same bytes read with 40-byte descriptors: the whole 64-byte descriptor is not a
    // multiple of 40, so it is refused rather than misread.
    #expect(throws: RuntimeAddressMapError.mapSize(64)) { try RuntimeAddressMap(wide, descriptorSize: 40, version: 1) }
  }

  @Test func corruptMapsAreRefused() {
    #expect(throws: RuntimeAddressMapError.version(2)) { try RuntimeAddressMap(linuxMap, descriptorSize: 48, version: 2) }
    #expect(throws: RuntimeAddressMapError.descriptorSize(32)) { try RuntimeAddressMap(linuxMap, descriptorSize: 32, version: 1) }
    #expect(throws: RuntimeAddressMapError.descriptorSize(1 << 20)) {
      try RuntimeAddressMap(linuxMap, descriptorSize: 1 << 20, version: 1)
    }
    #expect(throws: RuntimeAddressMapError.mapSize(143)) {
      try RuntimeAddressMap(Array(linuxMap.dropLast()), descriptorSize: 48, version: 1)
    }
    let long = [UInt8](repeating: 0, count: 48 * 1025)
    #expect(throws: RuntimeAddressMapError.tooManyDescriptors(1025)) { try RuntimeAddressMap(long, descriptorSize: 48, version: 1) }
    // A runtime region that wraps past 2^64, physically or virtually, or is not page-aligned.
    let wraps = descriptor(physical: 0xFFFF_FFFF_FFFF_F000, virtual: 0x2000_0000, pages: 2)
    #expect(throws: RuntimeAddressMapError.badRegion(index: 0)) { try RuntimeAddressMap(wraps, descriptorSize: 48, version: 1) }
    let virtualWraps = linuxMap + descriptor(physical: 0x5000_0000, virtual: 0xFFFF_FFFF_FFFF_0000, pages: 0x10)
    #expect(throws: RuntimeAddressMapError.badRegion(index: 3)) { try RuntimeAddressMap(virtualWraps, descriptorSize: 48, version: 1) }
    let hugePages = descriptor(physical: 0, virtual: 0, pages: UInt64.max)
    #expect(throws: RuntimeAddressMapError.badRegion(index: 0)) { try RuntimeAddressMap(hugePages, descriptorSize: 48, version: 1) }
    let unaligned = descriptor(physical: imageStart + 8, virtual: 0x2000_0000, pages: 1)
    #expect(throws: RuntimeAddressMapError.badRegion(index: 0)) { try RuntimeAddressMap(unaligned, descriptorSize: 48, version: 1) }
    // Corrupt descriptors without the runtime attribute are not the firmware's business.
    let oddRAM = linuxMap + descriptor(type: 7, physical: 0xFFFF_FFFF_FFFF_F000, virtual: 3, pages: 9, runtime: false)
    #expect((try? RuntimeAddressMap(oddRAM, descriptorSize: 48, version: 1))?.convert(imageStart) == 0x2000_0000)
  }

  @Test func readsInPlaceFromARawBuffer() throws {
    try linuxMap.withUnsafeBytes { raw in
      let map = try RuntimeAddressMap(raw, descriptorSize: 48, version: 1)
      #expect(map.convert(imageStart + 0x1234) == 0x2000_1234)
      #expect(map.region(1) == .init(physicalStart: imageStart, virtualStart: 0x2000_0000, size: 0x8_0000))
      #expect(map.region(0) == nil)
    }
  }
}
