import Testing
import FirmwareCore
@testable import RealmVMM

/// Image placement as kvmtool does it (arm/kvm.c); the header parser is tested with FirmwareCore.
@Suite struct KernelImageTests {
  /// A 64-byte Image header: code0/1, text_offset @8, image_size @16, flags @24, magic @56.
  static func header(textOffset: UInt64 = 0, imageSize: UInt64, flags: UInt64 = 0b1010, magic: UInt32 = 0x644D_5241) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 64)
    func put(_ value: UInt64, _ offset: Int, _ count: Int) {
      for index in 0..<count { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
    }
    put(textOffset, 8, 8)
    put(imageSize, 16, 8)
    put(flags, 24, 8)
    put(UInt64(magic), 56, 4)
    return bytes
  }

  /// The parsed header of a file holding `header` and one more byte.
  static func parsed(_ header: [UInt8]) throws -> ArmImageHeader {
    try ArmImageHeader(bytes: header, fileSize: UInt64(header.count + 1))
  }

  @Test func kernelPlacementFollowsKvmtool() throws {
    let header = try Self.parsed(Self.header(imageSize: 60 << 20))
    let layout = try BootLayout.kernel(header: header, initrdSize: 5_000_000, ramBase: 0x8000_0000, ramSize: 256 << 20)
    #expect(layout.entry == 0x8000_0000)
    #expect(layout.imageAddress == 0x8000_0000)
    // ALIGN(0x9000_0000 - (0x1_0000 + 2 MiB), 2 MiB) = 0x8FE0_0000 (the address veraison's tool predicts too)
    #expect(layout.deviceTreeAddress == 0x8FE0_0000)
    // initrd just below the DTB, page aligned
    let initrdStart: UInt64 = 0x8FE0_0000 - 5_001_216  // 5,000,000 rounded up to pages
    #expect(layout.initrd?.lowerBound == initrdStart)
    #expect(layout.initrd?.upperBound == initrdStart + 5_000_000)
  }

  @Test func deviceTreeStaysInLowMemoryWithLargeRAM() throws {
    let header = try Self.parsed(Self.header(textOffset: 0x20_0000, imageSize: 4096))
    let layout = try BootLayout.kernel(header: header, initrdSize: nil, ramBase: 0x8000_0000, ramSize: 4 << 30)
    #expect(layout.entry == 0x8020_0000)
    #expect(layout.deviceTreeAddress == 0x8FE0_0000)
    #expect(layout.initrd == nil)
  }

  @Test func refusesImagesThatDoNotFit() throws {
    let big = try Self.parsed(Self.header(imageSize: 300 << 20))
    #expect(throws: BootLayout.PlacementError.self) {
      try BootLayout.kernel(header: big, initrdSize: nil, ramBase: 0x8000_0000, ramSize: 256 << 20)
    }
    let kernel = try Self.parsed(Self.header(imageSize: 200 << 20))
    #expect(throws: BootLayout.PlacementError.self) {
      try BootLayout.kernel(header: kernel, initrdSize: 60 << 20, ramBase: 0x8000_0000, ramSize: 512 << 20)
    }
  }

  @Test func firmwarePlacement() throws {
    let layout = try BootLayout.firmware(size: 200_000, ramBase: 0x8000_0000, ramSize: 512 << 20)
    #expect(layout.entry == 0x8000_0000)
    // end of RAM: ALIGN(0xA000_0000 - (0x1_0000 + 2 MiB), 2 MiB) = 0x9FE0_0000
    #expect(layout.deviceTreeAddress == 0x9FE0_0000)
    #expect(throws: BootLayout.PlacementError.self) {
      try BootLayout.firmware(size: 16 << 20, ramBase: 0x8000_0000, ramSize: 16 << 20)
    }
  }

  @Test func firmwareWithAnImageHeaderIsPlacedLikeAKernel() throws {
    let header = try Self.parsed(Self.header(textOffset: 0x8_0000, imageSize: 9 << 20))
    let layout = try BootLayout.firmware(size: 130_000, header: header, ramBase: 0x8000_0000, ramSize: 64 << 20)
    #expect(layout.entry == 0x8008_0000)
    #expect(layout.imageAddress == 0x8008_0000)
    #expect(layout.imageMemorySize == 9 << 20)
    #expect(layout.deviceTreeAddress == 0x83E0_0000)
    #expect(throws: BootLayout.PlacementError.self) {
      try BootLayout.firmware(size: 130_000, header: header, ramBase: 0x8000_0000, ramSize: 8 << 20)
    }
  }
}
