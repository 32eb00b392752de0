import TestSupport
import Testing
import Foundation
import FirmwareCore

/// An EFI zboot container as Linux lays it out (zboot-header.S): "MZ\0\0", "zimg", payload offset
/// and size, two reserved words, the compression type; the payload at a page boundary.
func zbootImage(payload: [UInt8], type: String, offset: Int = 4096, trailer: [UInt8] = []) -> [UInt8] {
  var file = [UInt8](repeating: 0, count: offset)
  file.storeLE(0x5A4D, at: 0, width: 4)
  file.replaceSubrange(4..<8, with: Array("zimg".utf8))
  file.storeLE(UInt64(offset), at: 8, width: 4)
  file.storeLE(UInt64(payload.count), at: 12, width: 4)
  file.replaceSubrange(24..<24 + type.utf8.count, with: Array(type.utf8))
  file.storeLE(0x8182_23CD, at: 0x38, width: 4)  // LINUX_PE_MAGIC, not the Image magic
  file.storeLE(0x40, at: 0x3C, width: 4)
  return file + payload + trailer
}

@Suite struct KernelFormatTests {
  func detect(_ file: [UInt8]) throws(KernelFormatError) -> KernelFormat {
    try KernelFormat.detect(file.prefix(KernelFormat.headerSize), fileSize: UInt64(file.count))
  }

  @Test func detectsEachFormat() throws {
    let image = fakeKernel(size: 8192)
    #expect(try detect(image) == .image)
    guard let gz = hostGzip(image, level: 6) else { return }
    #expect(try detect(gz) == .gzip)
    #expect(try detect(zbootImage(payload: gz, type: "gzip")) == .zbootGzip(offset: 4096, size: gz.count))
    let zstd = zbootImage(payload: [0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3], type: "zstd22", trailer: [0, 0x20, 0, 0])
    #expect(try detect(zstd) == .zbootZstd(offset: 4096, size: 7))
  }

  @Test func rejectsWhatItCannotBoot() throws {
    // Anything else is for ArmImageHeader to judge.
    #expect(try detect([UInt8](repeating: 0x11, count: 4096)) == .image)
    #expect(try detect([]) == .image)
    #expect(try detect(Array("MZ".utf8) + [UInt8](repeating: 0, count: 100)) == .image)
    #expect(throws: KernelFormatError.unsupportedCompression(Array("lzma".utf8))) {
      try detect(zbootImage(payload: [1, 2, 3], type: "lzma"))
    }
    // Payload beyond the end of the file, or overlapping the header.
    var beyond = zbootImage(payload: [1, 2, 3], type: "gzip")
    beyond.storeLE(4, at: 12, width: 4)
    #expect(throws: KernelFormatError.payloadOutOfBounds(offset: 4096, size: 4, fileSize: 4099)) { try detect(beyond) }
    var huge = zbootImage(payload: [1, 2, 3], type: "gzip")
    huge.storeLE(0xFFFF_FFFF, at: 8, width: 4)
    #expect(throws: KernelFormatError.payloadOutOfBounds(offset: 0xFFFF_FFFF, size: 3, fileSize: 4099)) { try detect(huge) }
    var header = zbootImage(payload: [1, 2, 3], type: "gzip")
    header.storeLE(8, at: 8, width: 4)
    #expect(throws: KernelFormatError.payloadOutOfBounds(offset: 8, size: 3, fileSize: 4099)) { try detect(header) }
    #expect(throws: KernelFormatError.truncated) { try detect(Array(zbootImage(payload: [1], type: "gzip")[..<12])) }
  }

  /// A synthetic zboot container around a real gzip payload: detect, unpack, check the Image inside.
  @Test func unpacksZbootGzip() throws {
    let image = fakeKernel(size: 300_000, imageSize: 300_000)
    guard let gz = hostGzip(image, level: 9) else { return }
    let file = zbootImage(payload: gz, type: "gzip")
    guard case .zbootGzip(let offset, let size) = try detect(file) else {
      Issue.record("not detected as zboot gzip")
      return
    }
    let payload = Array(file[offset..<offset + size])
    #expect(try gunzip(payload, capacity: image.count) == image)
    let header = try ArmImageHeader(bytes: try gunzip(payload, capacity: image.count), fileSize: UInt64(image.count))
    #expect(header.imageSize == 300_000)
  }

  static let kernelPath = Arm64Assets.path("KERNEL_IMAGE")
  static let required = Arm64Assets.required

  /// Skipped without the asset, unless REALM_RUN_REQUIRE_ASSETS=1 (the project's test command), where it fails.
  @Test(.enabled(if: kernelPath != nil || required, "no Debian kernel (KERNEL_IMAGE, .build-nested/assets.env)"))
  func debianKernelGzipped() throws {
    let path = try #require(Self.kernelPath, "the Debian arm64 kernel is missing (Scripts/fetch-arm64-assets)")
    let kernel = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    guard let gz = hostGzip(kernel, level: 9, name: "vmlinuz") else { return }
    #expect(try detect(gz) == .gzip)
    let size = try #require(gz.withUnsafeBytes { Gzip.uncompressedSizeHint($0) })
    #expect(Int(size) == kernel.count)
    let head = try gunzipPrefix(gz, count: 64)
    let header = try ArmImageHeader(bytes: head, fileSize: UInt64(size))
    #expect(header.imageSize >= UInt64(kernel.count))
    let clock = ContinuousClock()
    var out: [UInt8] = []
    let elapsed = try clock.measure { out = try gunzip(gz, capacity: Int(size)) }
    #expect(out.count == kernel.count)
    #expect((out == kernel) == true)
    print("InflateTests: Debian kernel, \(gz.count) → \(out.count) bytes in \(elapsed)")
  }
}

@Suite struct CompressedKernelLayoutTests {
  @Test func compressedFileGoesToTheTopOfRAMAndTheLayoutBelowIt() throws {
    let ram = [MemoryRange(base: 0x4000_0000, size: 512 << 20)]
    let header = try ArmImageHeader(bytes: fakeKernel(size: 4096, imageSize: 0x300_0000), fileSize: 4096)
    let file = try BootLayout.compressedKernelBuffer(memory: ram, firmwareEnd: 0x4090_0000, size: 0x100_0001)
    #expect(file == 0x5EFF_F000)  // page-aligned, 0x100_0001 bytes fit below 0x6000_0000
    let layout = try BootLayout(memory: ram, firmwareEnd: 0x4090_0000, kernel: header, initrdSize: 0x10_0000,
                                deviceTreeCapacity: 0x2000, below: file)
    #expect(layout.deviceTree + layout.deviceTreeCapacity <= file)
    // Too big a file, and a layout that would run into the file.
    #expect(throws: BootLayoutError.doesNotFit(needed: 512 << 20, available: 0x1F70_0000)) {
      try BootLayout.compressedKernelBuffer(memory: ram, firmwareEnd: 0x4090_0000, size: 512 << 20)
    }
    #expect(throws: BootLayoutError.self) {
      try BootLayout(memory: ram, firmwareEnd: 0x4090_0000, kernel: header, initrdSize: 0, deviceTreeCapacity: 0x2000,
                     below: 0x4200_0000)
    }
    #expect(throws: BootLayoutError.doesNotFit(needed: 0x300_0000, available: 0)) {
      try BootLayout(memory: ram, firmwareEnd: 0x4090_0000, kernel: header, initrdSize: 0, deviceTreeCapacity: 0x2000,
                     below: 0x4000_1000)
    }
  }
}
