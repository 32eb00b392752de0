import TestSupport
import Testing
import Foundation
import FirmwareCore
import DiskImage

/// GPT, FAT and BLS readers on images made by DiskImage and by Debian's tools, intact and corrupted.
@Suite struct DiskFormatTests {
  static func makeDisk(initrds: [[UInt8]] = [[1, 2, 3], Array(repeating: 7, count: 5000)], kernelSize: Int = 3 << 20)
    throws -> (ScratchDirectory, [UInt8], [UInt8])
  {
    let scratch = ScratchDirectory()
    let kernel = fakeKernel(size: kernelSize)
    let k = scratch.file("Image", kernel)
    let paths = initrds.enumerated().map { scratch.file("initrd\($0.offset)", $0.element) }
    try BootDiskImage(kernel: k, initrds: paths, commandLine: "console=ttyAMA0 rdinit=/init", title: "Test")
      .write(to: scratch.path + "/disk.img")
    return (scratch, scratch.read("disk.img"), kernel)
  }

  @Test func readsDiskImageBackThroughGPTFATAndBLS() throws {
    let (_, disk, kernel) = try Self.makeDisk()
    var device = MemoryBlockDevice(bytes: disk)
    let gpt = try GUIDPartitionTable(device: &device)
    let esp = try gpt.efiSystemPartition()
    var fat = try FATVolume(device: PartitionBlockDevice(base: device, partition: esp))
    #expect(fat.kind == .fat32)
    let conf = try fat.readFile(try fat.lookup(Array("/loader/loader.conf".utf8)))
    let config = try LoaderConfiguration(text: conf)
    #expect(config.defaultEntry == Array("realm-run".utf8))
    let entries = try fat.entries(of: try fat.lookup(Array("/loader/entries".utf8)))
    #expect(entries.map(\.name) == [Array("realm-run.conf".utf8)])
    let entry = try BootEntry(id: Array("realm-run".utf8), text: try fat.readFile(entries[0]))
    #expect(entry.title == Array("Test".utf8))
    #expect(entry.options == Array("console=ttyAMA0 rdinit=/init".utf8))
    #expect(entry.initrds.count == 2)
    let kfile = try fat.lookup(entry.linux)
    #expect(try fat.readFile(kfile, limit: 8 << 20) == kernel)
    // Small runs exercise run splitting and the partial last cluster.
    var buffer = [UInt8](repeating: 0, count: kernel.count)
    try buffer.withUnsafeMutableBytes { try fat.readFile(kfile, into: $0, maxRun: 3 * fat.clusterSize) }
    #expect(buffer == kernel)
    #expect(try fat.readFile(try fat.lookup(Array("/EFI/BOOT/BOOTAA64.EFI".utf8)), limit: 8 << 20) == kernel)
    // The firmware checks the kernel's header from its first cluster before reading the rest.
    #expect(try fat.readFirstCluster(of: kfile) == Array(kernel.prefix(fat.clusterSize)))
    // A file's size cut short is a chain too long: only readFirstCluster reads a file's start.
    var head = kfile
    head.size = UInt32(fat.clusterSize)
    #expect(throws: FATError.chainTooLong(limit: 1)) { try fat.readFile(head) }
    #expect(try fat.readFile(try fat.lookup(entry.initrds[1])) == Array(repeating: 7, count: 5000))
    #expect(throws: FATError.notFound) { try fat.lookup(Array("/nope".utf8)) }
    #expect(throws: FATError.notADirectory) { try fat.lookup(Array("/vmlinuz/x".utf8)) }
  }

  @Test func gptFallsBackToBackupAndRejectsBothCorrupt() throws {
    let (_, disk, _) = try Self.makeDisk()
    var primaryBroken = disk
    primaryBroken[512 + 16] ^= 0xFF  // header CRC
    var d1 = MemoryBlockDevice(bytes: primaryBroken)
    #expect(throws: GPTError.headerChecksumMismatch) { try GUIDPartitionTable(device: &d1, headerLBA: 1) }
    let backup = try GUIDPartitionTable(device: &d1)
    #expect(backup.partitions.count == 1)
    let backupLBA = UInt64(disk.count / 512 - 1)
    #expect(backup.fallback == GPTFallback(primaryError: .headerChecksumMismatch, backupLBA: backupLBA))
    #expect(backup.fallback?.description
      == "GPT: primary table corrupt (GPT header CRC32 mismatch); using the backup at LBA \(backupLBA)")
    var intact = MemoryBlockDevice(bytes: disk)
    #expect(try GUIDPartitionTable(device: &intact).fallback == nil)

    var bothBroken = primaryBroken
    bothBroken[disk.count - 512 + 16] ^= 0xFF
    var d2 = MemoryBlockDevice(bytes: bothBroken)
    #expect(throws: GPTError.headerChecksumMismatch) { try GUIDPartitionTable(device: &d2) }

    var arrayBroken = disk
    arrayBroken[2 * 512 + 40] ^= 1  // primary entry array
    var d3 = MemoryBlockDevice(bytes: arrayBroken)
    #expect(throws: GPTError.entriesChecksumMismatch) { try GUIDPartitionTable(device: &d3, headerLBA: 1) }
    #expect(try GUIDPartitionTable(device: &d3).fallback?.primaryError == .entriesChecksumMismatch)

    var d4 = MemoryBlockDevice(bytes: Array(disk[0..<(64 * 512)]))  // truncated: entries fine, partitions out of range
    #expect(throws: GPTError.self) { try GUIDPartitionTable(device: &d4) }
    var d5 = MemoryBlockDevice(bytes: Array(repeating: 0, count: 4096))
    #expect(throws: GPTError.noSignature) { try GUIDPartitionTable(device: &d5) }
  }

  /// A 2 MiB FAT16 volume with a long-named file in a subdirectory, written by DiskImage's own
  /// builder is FAT32 only, so FAT12/16 come from mkfs.fat + mtools when installed.
  @Test(arguments: [12, 16, 32])
  func readsMkfsFatVolumes(bits: Int) throws {
    let scratch = ScratchDirectory()
    let image = scratch.path + "/fat.img"
    // mkfs.fat's smallest volumes of each kind with its default cluster sizes (FAT16 needs 4085 clusters).
    let sizeKiB = [12: 4 * 1024, 16: 16 * 1024, 32: 40 * 1024][bits]!
    guard runToolSucceeding("mkfs.fat", ["-C", "-F", "\(bits)", image, "\(sizeKiB)"]) != nil else { return }
    let payload = fakeKernel(size: 300_000)
    let src = scratch.file("A Long File Name.bin", payload)
    guard runToolSucceeding("mmd", ["-i", image, "::/Sub Dir"]) != nil,
          runToolSucceeding("mcopy", ["-i", image, src, "::/Sub Dir/A Long File Name.bin"]) != nil
    else { return }
    var fat = try FATVolume(device: MemoryBlockDevice(bytes: scratch.read("fat.img")))
    #expect(fat.kind == (bits == 12 ? .fat12 : bits == 16 ? .fat16 : .fat32))
    let e = try fat.lookup(Array("/sub dir/a long file NAME.bin".utf8))
    #expect(e.size == 300_000)
    #expect(try fat.readFile(e) == payload)
  }

  /// The first FAT sector of the ESP and the directory cluster of /loader/entries.
  static func espLayout(_ disk: [UInt8]) throws -> (espOffset: Int, fatOffset: Int, dataOffset: Int, clusterBytes: Int) {
    let espOffset = 2048 * 512
    let boot = Array(disk[espOffset..<(espOffset + 512)])
    let reserved = Int(try #require(boot.le16(at: 14)))
    let fatSectors = Int(try #require(boot.le32(at: 36)))
    let spc = Int(boot[13])
    return (espOffset, espOffset + reserved * 512, espOffset + (reserved + 2 * fatSectors) * 512, spc * 512)
  }

  @Test func rejectsClusterLoopsAndOutOfRangeClusters() throws {
    let (_, disk, _) = try Self.makeDisk()
    let layout = try Self.espLayout(disk)
    // Root directory is cluster 2: make it point to itself (a loop).
    var looped = disk
    looped.storeLE(2, at: layout.fatOffset + 2 * 4, width: 4)
    var fat1 = try FATVolume(device: MemoryBlockDevice(bytes: Array(looped[layout.espOffset...])))
    #expect(throws: FATError.clusterLoop(2)) { try fat1.entries(of: nil) }

    // Root chain pointing beyond the last cluster.
    var outOfRange = disk
    outOfRange.storeLE(0x0FFF_FFF0, at: layout.fatOffset + 2 * 4, width: 4)
    var fat2 = try FATVolume(device: MemoryBlockDevice(bytes: Array(outOfRange[layout.espOffset...])))
    #expect(throws: FATError.badCluster(0x0FFF_FFF0)) { try fat2.entries(of: nil) }

    // The kernel's chain ends early.
    var fat3 = try FATVolume(device: MemoryBlockDevice(bytes: Array(disk[layout.espOffset...])))
    let kernel = try fat3.lookup(Array("/vmlinuz".utf8))
    var short = disk
    short.storeLE(0x0FFF_FFFF, at: layout.fatOffset + Int(kernel.firstCluster) * 4, width: 4)
    var fat4 = try FATVolume(device: MemoryBlockDevice(bytes: Array(short[layout.espOffset...])))
    let needed = (Int(kernel.size) + fat4.clusterSize - 1) / fat4.clusterSize
    #expect(throws: FATError.chainTooShort(expected: needed, found: 1)) { try fat4.readFile(kernel, limit: 8 << 20) }

    // A directory entry naming cluster 0x0FFFFFF0 as its first cluster.
    var badStart = kernel
    badStart.firstCluster = 0x0FFF_FFF0
    #expect(throws: FATError.badCluster(0x0FFF_FFF0)) { try fat3.readFile(badStart, limit: 8 << 20) }
  }

  /// The kernel's chain made to loop first → first+1 → first+2 → first (the issue's 6→7→8→6):
  /// refused as a loop after a few clusters, not read around and around up to the file's size.
  @Test func rejectsALoopingFileChainEarly() throws {
    let (_, disk, _) = try Self.makeDisk()
    let layout = try Self.espLayout(disk)
    var intact = try FATVolume(device: MemoryBlockDevice(bytes: Array(disk[layout.espOffset...])))
    let kernel = try intact.lookup(Array("/vmlinuz".utf8))
    let first = Int(kernel.firstCluster)
    // DiskImage writes a file's clusters consecutively, so first+1 and first+2 are the kernel's.
    #expect(try intact.nextCluster(UInt32(first)) == UInt32(first + 1))
    #expect(try intact.nextCluster(UInt32(first + 1)) == UInt32(first + 2))
    var looped = disk
    looped.storeLE(UInt64(first), at: layout.fatOffset + (first + 2) * 4, width: 4)
    var fat = try FATVolume(device: CountingBlockDevice(base: MemoryBlockDevice(bytes: Array(looped[layout.espOffset...]))))
    #expect(kernel.size > 16 * UInt32(fat.clusterSize))
    #expect(throws: FATError.clusterLoop(UInt32(first))) { try fat.readFile(kernel, limit: 8 << 20) }
    // Brent's check meets the first cluster again on its third time round: at most a few clusters read.
    #expect(fat.device.bytesRead <= 8 * fat.clusterSize)
    #expect(FATError.clusterLoop(UInt32(first)).description == "FAT cluster chain loops (cluster \(first) comes twice)")
    // The whole-file reader refuses it the same way.
    var buffer = [UInt8](repeating: 0, count: Int(kernel.size))
    #expect(throws: FATError.clusterLoop(UInt32(first))) {
      try buffer.withUnsafeMutableBytes { try fat.readFile(kernel, into: $0, maxRun: fat.clusterSize) }
    }
  }

  /// A chain that goes on past the file's size (its last cluster linked to another), and chains
  /// whose clusters link to themselves, are refused.
  @Test func rejectsAFileChainLongerThanItsSize() throws {
    let (_, disk, _) = try Self.makeDisk(initrds: [Array(repeating: 9, count: 10_000)])
    let layout = try Self.espLayout(disk)
    var intact = try FATVolume(device: MemoryBlockDevice(bytes: Array(disk[layout.espOffset...])))
    let initrd = try intact.lookup(Array("/initrd0.img".utf8))
    let needed = (Int(initrd.size) + intact.clusterSize - 1) / intact.clusterSize
    var last = initrd.firstCluster
    while let next = try intact.nextCluster(last) { last = next }
    #expect(Int(last - initrd.firstCluster) + 1 == needed)

    var longer = disk
    longer.storeLE(UInt64(intact.clusterCount), at: layout.fatOffset + Int(last) * 4, width: 4)
    var fat = try FATVolume(device: MemoryBlockDevice(bytes: Array(longer[layout.espOffset...])))
    #expect(throws: FATError.chainTooLong(limit: needed)) { try fat.readFile(initrd) }
    #expect(FATError.chainTooLong(limit: needed).description
      == "FAT cluster chain goes on past the \(needed) clusters its size allows")

    // A cluster linked to itself is met again at once; at the end of the file the length
    // check comes first (the walk never goes past the file's clusters).
    var selfLoop = disk
    selfLoop.storeLE(UInt64(initrd.firstCluster), at: layout.fatOffset + Int(initrd.firstCluster) * 4, width: 4)
    var fat2 = try FATVolume(device: MemoryBlockDevice(bytes: Array(selfLoop[layout.espOffset...])))
    #expect(throws: FATError.clusterLoop(initrd.firstCluster)) { try fat2.readFile(initrd) }
    var lastLoop = disk
    lastLoop.storeLE(UInt64(last), at: layout.fatOffset + Int(last) * 4, width: 4)
    var fat3 = try FATVolume(device: MemoryBlockDevice(bytes: Array(lastLoop[layout.espOffset...])))
    #expect(throws: FATError.chainTooLong(limit: needed)) { try fat3.readFile(initrd) }
  }

  /// Brent's check on chains made only of FAT links (no data): every loop shape is found, every
  /// finite chain is walked to its end, and no walk takes more than a few times the chain's steps.
  @Test func clusterChainWalkFindsEveryLoop() throws {
    let (_, disk, _) = try Self.makeDisk(kernelSize: 64 << 10)
    let layout = try Self.espLayout(disk)
    for tail in 0..<6 {
      for cycle in 1..<9 {
        var image = disk
        let start = 40  // only FAT links are followed; the clusters' data is never read
        for i in 0..<(tail + cycle - 1) {
          image.storeLE(UInt64(start + i + 1), at: layout.fatOffset + (start + i) * 4, width: 4)
        }
        image.storeLE(UInt64(start + tail), at: layout.fatOffset + (start + tail + cycle - 1) * 4, width: 4)
        var fat = try FATVolume(device: MemoryBlockDevice(bytes: Array(image[layout.espOffset...])))
        var chain = try FATClusterChain(first: UInt32(start), length: .atMost(1000), in: fat)
        var failure: FATError? = nil
        do throws(FATError) { while try chain.nextRun(in: &fat, maxClusters: 1) != nil {} } catch { failure = error }
        guard case .clusterLoop(let c)? = failure else {
          Issue.record("tail \(tail) cycle \(cycle): \(String(describing: failure))"); continue
        }
        #expect(c >= UInt32(start + tail) && c < UInt32(start + tail + cycle))
        #expect(chain.count <= 2 * (tail + 2 * cycle) + 2, "tail \(tail) cycle \(cycle): \(chain.count) steps")
      }
    }
  }

  @Test func rejectsBrokenBootSectors() throws {
    let (_, disk, _) = try Self.makeDisk()
    let esp = Array(disk[(2048 * 512)...])
    var noSig = esp
    noSig[510] = 0
    #expect(throws: FATError.notFAT) { try FATVolume(device: MemoryBlockDevice(bytes: noSig)) }
    var badBPS = esp
    badBPS.storeLE(100, at: 11, width: 2)
    #expect(throws: FATError.notFAT) { try FATVolume(device: MemoryBlockDevice(bytes: badBPS)) }
    #expect(throws: FATError.badGeometry) { try FATVolume(device: MemoryBlockDevice(bytes: Array(esp[0..<(1 << 20)]))) }
    var badRoot = esp
    badRoot.storeLE(0xFFFF_FFF0, at: 44, width: 4)
    #expect(throws: FATError.badGeometry) { try FATVolume(device: MemoryBlockDevice(bytes: badRoot)) }
  }

  /// Random bit flips in the partition table, boot sector, FAT and directories: every read either
  /// fails with a typed error or returns exactly as many bytes as the directory entry says, and
  /// an untouched kernel reads back byte for byte. Both outcomes occur (the flips reach the
  /// checks, and some images stay readable).
  @Test func survivesRandomCorruptionOfMetadata() throws {
    let (_, disk, kernel) = try Self.makeDisk(kernelSize: 64 << 10)
    let layout = try Self.espLayout(disk)
    // Flips land up to the end of the kernel's clusters (the files come first in the data area);
    // each round's flips are undone after it, so the 64 MiB disk is never copied.
    let metadataEnd = layout.dataOffset + (kernel.count / layout.clusterBytes + 64) * layout.clusterBytes
    var b = disk
    var seed: UInt32 = 7
    var refused = 0
    var intact = 0
    for _ in 0..<300 {
      var flipped: [(index: Int, byte: UInt8)] = []
      defer { for flip in flipped.reversed() { b[flip.index] = flip.byte } }
      seed = seed &* 1_664_525 &+ 1_013_904_223
      for _ in 0..<(1 + Int(seed >> 29)) {  // 1 to 8 flips
        seed = seed &* 1_664_525 &+ 1_013_904_223
        let pick = Int(seed >> 4)
        // A flip lands in the first sectors (MBR, GPT), the ESP's boot sector, reserved sectors and
        // the start of its first FAT (where the files' entries are), or the directories and files.
        let i = switch pick % 3 {
        case 0: pick % (40 * 512)
        case 1: layout.espOffset + pick % (64 << 10)
        default: layout.dataOffset + pick % (metadataEnd - layout.dataOffset)
        }
        flipped.append((i, b[i]))
        b[i] ^= UInt8(truncatingIfNeeded: seed >> 24) | 1
      }
      var device = MemoryBlockDevice(bytes: b)
      guard let gpt = try? GUIDPartitionTable(device: &device), let esp = try? gpt.efiSystemPartition(),
            var fat = try? FATVolume(device: PartitionBlockDevice(base: device, partition: esp))
      else {
        refused += 1
        continue
      }
      if let dir = try? fat.lookup(Array("/loader/entries".utf8)), let entries = try? fat.entries(of: dir) {
        for e in entries {
          if let bytes = try? fat.readFile(e, limit: 1 << 16) { #expect(bytes.count == Int(e.size)) }
        }
      }
      guard let k = try? fat.lookup(Array("/vmlinuz".utf8)), let bytes = try? fat.readFile(k, limit: 1 << 20) else {
        refused += 1
        continue
      }
      #expect(bytes.count == Int(k.size))
      if bytes == kernel { intact += 1 }
    }
    #expect(refused > 0 && intact > 0, "refused \(refused), intact \(intact) of 300")
  }

  @Test func sgdiskAndFsckAcceptTheImage() throws {
    let (scratch, disk, _) = try Self.makeDisk()
    if let (status, out) = runTool("sgdisk", ["-v", scratch.path + "/disk.img"]) {
      #expect(status == 0)
      #expect(out.contains("No problems found"))
    }
    let layout = try Self.espLayout(disk)
    let sectors = Int(try #require(disk.le32(at: layout.espOffset + 32)))
    let esp = scratch.file("esp.img", Array(disk[layout.espOffset..<(layout.espOffset + sectors * 512)]))
    if let (status, out) = runTool("fsck.fat", ["-n", esp]) {
      #expect(status == 0, "\(out)")
    }
  }
}
