import TestSupport
import Testing
import Foundation
import DiskImage
import FirmwareCore
import Platform

@Suite struct BootDiskImageTests {
  typealias Scratch = ScratchDirectory

  static func kernel(_ size: Int) -> [UInt8] {
    var k = [UInt8](repeating: 0xA5, count: size)
    for i in 0..<64 { k[i] = 0 }
    k.storeLE(UInt64(size), at: 16, width: 8)
    k.storeLE(0xA, at: 24, width: 8)
    k.storeLE(UInt64(ArmImageHeader.magic), at: 56, width: 4)
    return k
  }

  static func tool(_ name: String, _ args: [String]) -> (Int32, String)? {
    runTool(name, args).map { ($0.status, $0.output) }
  }

  @Test func writesAVerifiableImageWithRootPartition() throws {
    let s = Scratch()
    let k = s.file("Image", Self.kernel(1 << 20))
    let i = s.file("initrd", [1, 2, 3, 4])
    let rootBytes = [UInt8](repeating: 0x5A, count: 3 << 20 | 17)
    let root = s.file("root.ext4", rootBytes)
    try BootDiskImage(kernel: k, initrds: [i], commandLine: "root=/dev/vda2", title: "T", rootFilesystem: root)
      .write(to: s.path + "/disk.img")
    let disk = s.read("disk.img")
    #expect(disk.count % (1 << 20) == 0)
    #expect(disk[510] == 0x55 && disk[511] == 0xAA && disk[450] == 0xEE)
    var device = MemoryBlockDevice(bytes: disk)
    let gpt = try GUIDPartitionTable(device: &device)
    #expect(gpt.partitions.count == 2)
    let esp = try gpt.efiSystemPartition()
    #expect(esp.firstLBA == 2048 && esp.sectorCount * 512 >= BootDiskImage.minimumESPBytes)
    let rootPart = gpt.partitions[1]
    #expect(rootPart.typeGUID == GUIDPartitionTable.linuxFilesystemType)
    let start = Int(rootPart.firstLBA) * 512
    #expect(Array(disk[start..<(start + rootBytes.count)]) == rootBytes)
    // The backup header agrees.
    var backupOnly = MemoryBlockDevice(bytes: disk)
    let backup = try GUIDPartitionTable(device: &backupOnly, headerLBA: backupOnly.sectorCount - 1)
    #expect(backup.partitions == gpt.partitions)
    if let (status, out) = Self.tool("sgdisk", ["-v", s.path + "/disk.img"]) {
      #expect(status == 0 && out.contains("No problems found"), "\(out)")
    }
    let espFile = s.file("esp.img", Array(disk[(2048 * 512)..<(Int(esp.lastLBA + 1) * 512)]))
    if let (status, out) = Self.tool("fsck.fat", ["-n", espFile]) {
      #expect(status == 0, "\(out)")
    }
    if let (status, out) = Self.tool("mdir", ["-i", espFile, "-b", "-/", "::/"]) {
      #expect(status == 0)
      #expect(out.contains("::/loader/entries/realm-run.conf") && out.contains("::/EFI/BOOT/BOOTAA64.EFI"), "\(out)")
    }
    var fat = try FATVolume(device: PartitionBlockDevice(base: device, partition: esp))
    let entry = try fat.readFile(try fat.lookup(Array("/loader/entries/realm-run.conf".utf8)))
    #expect(String(decoding: entry, as: UTF8.self).contains("options root=/dev/vda2\n"))
  }

  @Test func isDeterministic() throws {
    let s = Scratch()
    let k = s.file("Image", Self.kernel(4096))
    let image = BootDiskImage(kernel: k, commandLine: "quiet")
    try image.write(to: s.path + "/a.img")
    try image.write(to: s.path + "/b.img")
    #expect(s.read("a.img") == s.read("b.img"))
  }

  @Test func reportsBadInputs() throws {
    let s = Scratch()
    let missing = s.path + "/missing"
    #expect(throws: DiskImageError.self) { try BootDiskImage(kernel: missing).write(to: s.path + "/x.img") }
    let notImage = s.file("notimage", [UInt8](repeating: 0, count: 4096))
    do {
      try BootDiskImage(kernel: notImage).write(to: s.path + "/x.img")
      Issue.record("expected an error")
    } catch {
      #expect(error.description.contains("not an arm64 Linux Image"))
    }
    let k = s.file("Image", Self.kernel(4096))
    #expect(throws: DiskImageError.invalidText(field: "command line")) {
      try BootDiskImage(kernel: k, commandLine: "a\nb").write(to: s.path + "/x.img")
    }
    #expect(throws: DiskImageError.self) { try BootDiskImage(kernel: k).write(to: s.path + "/no/such/dir/x.img") }
    #expect(throws: DiskImageError.self) { try BootDiskImage(kernel: k, initrds: [s.path]).write(to: s.path + "/x.img") }
  }

  @Test func entryTextListsEveryInitrd() {
    let image = BootDiskImage(kernel: "/k", initrds: ["/a", "/b"], commandLine: "x=1", title: "My Linux")
    #expect(image.entryText == "title My Linux\nversion 1\nsort-key realm-run\nlinux /vmlinuz\ninitrd /initrd0.img\ninitrd /initrd1.img\noptions x=1\n")
  }
}

/// `image create` must never destroy a file: not the output it replaces, not an input named as the
/// output (issue 15). Each of these overwrote, truncated or endlessly grew a file before.
@Suite struct BootDiskImageSafetyTests {
  typealias Scratch = BootDiskImageTests.Scratch

  static func status(_ path: String) -> stat {
    var st = stat()
    #expect(stat(path, &st) == 0, "stat \(path)")
    return st
  }

  /// How the file `name` no longer holds `bytes`, or nil. Not `#expect(a == b)` of two arrays:
  /// on failure that diffs megabytes of bytes, for minutes.
  static func change(_ s: Scratch, _ name: String, _ bytes: [UInt8]) -> String? {
    let now = s.read(name)
    return now == bytes ? nil : "\(name) changed: \(now.count) bytes, was \(bytes.count)"
  }

  /// Names in the scratch directory besides `expected`: a temporary file left behind shows here.
  static func strayFiles(_ s: Scratch, expected: Set<String>) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: s.path)) ?? []).filter { !expected.contains($0) }.sorted()
  }

  @Test func refusesAnExistingOutputUnlessReplacing() throws {
    let s = Scratch()
    let k = s.file("Image", BootDiskImageTests.kernel(4096))
    let precious = [UInt8](repeating: 0x42, count: 10_000)
    let out = s.file("disk.img", precious)
    #expect(throws: DiskImageError.outputExists(path: out)) { try BootDiskImage(kernel: k).write(to: out) }
    let change = Self.change(s, "disk.img", precious)
    #expect(change == nil)
    try BootDiskImage(kernel: k).write(to: out, replacing: true)
    var device = MemoryBlockDevice(bytes: s.read("disk.img"))
    #expect(try GUIDPartitionTable(device: &device).partitions.count == 1)
    #expect(Self.strayFiles(s, expected: ["Image", "disk.img"]) == [])
  }

  @Test func replacingWritesThroughASymbolicLink() throws {
    let s = Scratch()
    let k = s.file("Image", BootDiskImageTests.kernel(4096))
    let target = s.file("real.img", [1, 2, 3])
    try FileManager.default.createSymbolicLink(atPath: s.path + "/link.img", withDestinationPath: target)
    try BootDiskImage(kernel: k).write(to: s.path + "/link.img", replacing: true)
    // The link still points at the file, which now holds the image.
    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: s.path + "/link.img") == target)
    #expect(s.read("real.img").count > 1 << 20)
  }

  @Test func refusesTheKernelAsOutputEvenWhenReplacing() throws {
    let s = Scratch()
    let kernelBytes = BootDiskImageTests.kernel(8192)
    let k = s.file("Image", kernelBytes)
    for replacing in [false, true] {
      do {
        try BootDiskImage(kernel: k).write(to: k, replacing: replacing)
        Issue.record("writing over the kernel was not refused")
      } catch {
        #expect(error == .outputIsInput(output: k, role: "kernel", input: k))
        #expect(error.description == "\(k) is the same file as the kernel \(k) (choose another output)")
      }
    }
    let change = Self.change(s, "Image", kernelBytes)
    #expect(change == nil)
    #expect(Self.strayFiles(s, expected: ["Image"]) == [])
  }

  @Test func refusesAnInitrdAsOutput() throws {
    let s = Scratch()
    let k = s.file("Image", BootDiskImageTests.kernel(4096))
    let a = s.file("a.cpio", [1, 2, 3])
    let b = s.file("b.cpio", [4, 5, 6])
    #expect(throws: DiskImageError.outputIsInput(output: b, role: "initrd", input: b)) {
      try BootDiskImage(kernel: k, initrds: [a, b]).write(to: b, replacing: true)
    }
    let change = Self.change(s, "b.cpio", [4, 5, 6])
    #expect(change == nil)
  }

  /// The rootfs as output, by its own name, through a symbolic link and through a hard link: before,
  /// the copy read the file it was appending to until the disk was full.
  @Test(arguments: ["same", "symlink", "hardlink"])
  func refusesTheRootfsAsOutput(how: String) throws {
    let s = Scratch()
    let k = s.file("Image", BootDiskImageTests.kernel(4096))
    let rootBytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    let root = s.file("root.ext4", rootBytes)
    let out: String
    switch how {
    case "symlink":
      out = s.path + "/out.img"
      try FileManager.default.createSymbolicLink(atPath: out, withDestinationPath: root)
    case "hardlink":
      out = s.path + "/out.img"
      try FileManager.default.linkItem(atPath: root, toPath: out)
    default: out = root
    }
    #expect(throws: DiskImageError.outputIsInput(output: out, role: "rootfs", input: root)) {
      try BootDiskImage(kernel: k, rootFilesystem: root).write(to: out, replacing: true)
    }
    let change = Self.change(s, "root.ext4", rootBytes)
    #expect(change == nil)
    #expect(Self.strayFiles(s, expected: ["Image", "root.ext4", "out.img"]) == [])
  }

  /// A 64 MiB rootfs with 1 MiB of data in two places is copied byte for byte, and the image
  /// allocates about that megabyte and the ESP, not 64 MiB.
  @Test func copiesASparseRootfsSparsely() throws {
    let s = Scratch()
    let k = s.file("Image", BootDiskImageTests.kernel(4096))
    let rootPath = s.path + "/root.ext4"
    let size = 64 << 20
    let first = [UInt8](repeating: 0x11, count: 512 << 10)
    let second = (0..<(512 << 10)).map { UInt8(truncatingIfNeeded: $0 | 1) }
    let handle = try #require(FileHandle(forWritingAtPath: s.file("root.ext4", [])))
    try handle.truncate(atOffset: UInt64(size))
    try handle.seek(toOffset: 3 << 20)
    try handle.write(contentsOf: first)
    try handle.seek(toOffset: 40 << 20)
    try handle.write(contentsOf: second)
    try handle.close()
    let rootBlocks = Self.status(rootPath).st_blocks
    #expect(rootBlocks * 512 < 2 << 20, "the file system here does not make sparse files")

    var reported: [(UInt64, UInt64)] = []
    try BootDiskImage(kernel: k, rootFilesystem: rootPath).write(to: s.path + "/disk.img") { reported.append(($0, $1)) }
    let disk = s.read("disk.img")
    var device = MemoryBlockDevice(bytes: disk)
    let root = try GUIDPartitionTable(device: &device).partitions[1]
    let start = Int(root.firstLBA) * 512
    let copied = Array(disk[start..<(start + size)]) == s.read("root.ext4")
    #expect(copied, "the root partition differs from the rootfs")
    let allocated = Int(Self.status(s.path + "/disk.img").st_blocks) * 512
    #expect(allocated < 16 << 20, "the image allocates \(allocated >> 20) MiB for 1 MiB of rootfs data and its ESP")
    #expect(reported.last.map { $0 == (UInt64(size), UInt64(size)) } == true)
  }

  /// A create that fails after its checks (an initrd it cannot read) leaves the output it was to
  /// replace as it was, and no temporary file.
  @Test func aFailedCreateLeavesTheOutputUntouched() throws {
    let s = Scratch()
    let k = s.file("Image", BootDiskImageTests.kernel(4096))
    let old = [UInt8](repeating: 0x77, count: 5000)
    let out = s.file("disk.img", old)
    let unreadable = s.file("initrd", [1, 2, 3])
    #expect(chmod(unreadable, 0) == 0)
    // Root reads a file whatever its mode: a directory is an initrd nobody can read.
    let initrd = getuid() == 0 ? s.path : unreadable
    #expect(throws: DiskImageError.self) { try BootDiskImage(kernel: k, initrds: [initrd]).write(to: out, replacing: true) }
    let change = Self.change(s, "disk.img", old)
    #expect(change == nil)
    #expect(Self.strayFiles(s, expected: ["Image", "disk.img", "initrd"]) == [])
  }

  /// A rootfs cut short while it is copied fails the create after the temporary image exists: the
  /// output it was to replace stays as it was, and the temporary file goes.
  @Test func aRootfsCutShortWhileCopiedLeavesTheOutputUntouched() throws {
    let s = Scratch()
    let k = s.file("Image", BootDiskImageTests.kernel(4096))
    let root = s.file("root.ext4", [UInt8](repeating: 0x3C, count: 12 << 20))
    let old = [UInt8](repeating: 0x77, count: 5000)
    let out = s.file("disk.img", old)
    do {
      try BootDiskImage(kernel: k, rootFilesystem: root).write(to: out, replacing: true) { _, _ in _ = truncate(root, 0) }
      Issue.record("a rootfs cut short was copied without an error")
    } catch {
      #expect(error == .cannotRead(path: root, reason: "the file shrank while it was copied"))
    }
    let change = Self.change(s, "disk.img", old)
    #expect(change == nil)
    #expect(Self.strayFiles(s, expected: ["Image", "disk.img", "root.ext4"]) == [])
  }
}
