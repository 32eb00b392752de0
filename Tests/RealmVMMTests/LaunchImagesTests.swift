import Foundation
import Platform
import Testing

@testable import RealmVMM
import TestSupport

/// Boot files are checked by their header and size before they are read, and mapped, not copied.
@Suite struct LaunchImagesTests {

  /// How many of the file's pages are in the page cache (mincore over a fresh mapping).
  static func cachedPages(_ path: String) -> Int {
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    var info = stat()
    fstat(fd, &info)
    let size = Int(info.st_size)
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)!
    defer { munmap(map, size) }
    var residency = [UInt8](repeating: 0, count: (size + page - 1) / page)
    mincore(map, size, &residency)
    return residency.reduce(0) { $0 + Int($1 & 1) }
  }

  /// A 1 GiB "kernel" (sparse, no Image header) with 2 GiB of RAM: refused by its header after one
  /// page is read; the old code read all of it (4 GiB took 20 s and 4.2 GB) before refusing.
  @Test func aHugeFileThatIsNoImageIsRefusedWithoutReadingIt() throws {
    let scratch = ScratchDirectory()
    let path = scratch.path("big-kernel")
    let fd = open(path, O_RDWR | O_CREAT, 0o644)
    #expect(ftruncate(fd, 1 << 30) == 0)
    close(fd)
    let config = MachineConfig(memorySize: 2 << 30, cpus: 1, boot: .kernel(path: path, initrd: nil))
    #expect(throws: VMMError.self) { try LaunchImages(config: config) }
    do {
      _ = try LaunchImages(config: config)
    } catch {
      #expect(error.description.contains("not an arm64 Image") || error.description.contains("magic"), "\(error)")
    }
    #expect(Self.cachedPages(path) <= 4096)  // the header page and the kernel's readahead (8 MiB seen), of 262144
  }

  /// A real-looking Image and an initrd: the regions hold exactly their bytes at the placed
  /// addresses, zero-padded to whole granules.
  @Test func regionsHoldTheFilesBytes() throws {
    let scratch = ScratchDirectory()
    let kernel = KernelImageTests.header(imageSize: 0x10_0000) + (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
    let initrd = [UInt8](repeating: 0x5A, count: 777)
    FileManager.default.createFile(atPath: scratch.path("Image"), contents: Data(kernel))
    FileManager.default.createFile(atPath: scratch.path("initrd"), contents: Data(initrd))
    let images = try LaunchImages(config: MachineConfig(
      memorySize: 64 << 20, cpus: 1, boot: .kernel(path: scratch.path("Image"), initrd: scratch.path("initrd"))))
    #expect(images.regions.count == 3)
    let kernelRegion = images.regions[0]
    #expect(kernelRegion.address == images.layout.imageAddress && kernelRegion.size == 8192)
    #expect(kernelRegion.contentOffset == 0 && kernelRegion.contents.withBytes { Array($0) } == kernel)
    let initrdRegion = try #require(images.regions.first { $0.address == alignDown(images.layout.initrd!.lowerBound, 4096) })
    #expect(initrdRegion.contents.withBytes { Array($0) } == initrd)
    #expect(initrdRegion.contentOffset + 777 <= Int(initrdRegion.size))
    #expect(initrdRegion.size % 4096 == 0)
    #expect(images.regions.allSatisfy { $0.address % 4096 == 0 && $0.size % 4096 == 0 })
  }
}
