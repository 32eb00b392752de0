import TestSupport
import Testing
import Foundation
import DiskImage
import FirmwareCore

@Suite struct BootDiskImageTests {
  final class Scratch {
    let path = NSTemporaryDirectory() + "diskimage-\(UUID().uuidString)"
    init() { try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String, _ bytes: [UInt8]) -> String {
      FileManager.default.createFile(atPath: path + "/" + name, contents: Data(bytes))
      return path + "/" + name
    }
    func read(_ name: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path + "/" + name) ?? Data()) }
  }

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
