import FirmwareCore

/// A bootable disk image for the realm firmware (or any UEFI/BLS loader): protective MBR, GPT
/// (primary and backup), a FAT32 EFI system partition holding the kernel (as /vmlinuz and
/// /EFI/BOOT/BOOTAA64.EFI), the initrds, /loader/loader.conf and
/// /loader/entries/realm-run.conf, and optionally a root file system image as partition 2.
public struct BootDiskImage: Sendable {
  /// Path of the arm64 Linux `Image`.
  public var kernel: String
  /// Paths of initrds, concatenated by the loader in this order.
  public var initrds: [String]
  /// Kernel command line (the BLS `options`).
  public var commandLine: String
  /// Boot entry title.
  public var title: String
  /// Optional root file system image appended as a Linux file system partition.
  public var rootFilesystem: String?

  /// Smallest EFI system partition created.
  public static let minimumESPBytes: UInt64 = 64 << 20
  /// The boot entry id (file name without .conf).
  public static let entryID = "realm-run"

  public init(kernel: String, initrds: [String] = [], commandLine: String = "", title: String = "Linux (realm-run)",
              rootFilesystem: String? = nil) {
    self.kernel = kernel
    self.initrds = initrds
    self.commandLine = commandLine
    self.title = title
    self.rootFilesystem = rootFilesystem
  }

  /// The BLS entry text.
  public var entryText: String {
    var text = "title \(title)\nversion 1\nsort-key realm-run\nlinux /vmlinuz\n"
    for i in initrds.indices { text += "initrd /\(BootDiskImage.initrdName(i))\n" }
    if !commandLine.isEmpty { text += "options \(commandLine)\n" }
    return text
  }

  static func initrdName(_ i: Int) -> String { "initrd\(i).img" }

  /// Writes the image to `path`, which must not exist unless `replacing` (then the file there, or
  /// the one a symbolic link there points to, is replaced).
  ///
  /// Nothing at `path` changes until the image is complete and on disk: the image is written to a
  /// new file in the same directory and renamed over `path` at the end, and a failure removes it.
  /// `path` must not be the same file as any input, even when `replacing`: it would be destroyed
  /// before (or while) it is read. The rootfs is copied as large as it was when opened, holes kept;
  /// `progress` gets the bytes of it copied so far and its size.
  public func write(to path: String, replacing: Bool = false,
                    progress: (_ copied: UInt64, _ total: UInt64) -> Void = { _, _ in }) throws(DiskImageError) {
    guard !title.contains("\n"), !commandLine.contains("\n") else {
      throw .invalidText(field: title.contains("\n") ? "title" : "command line")
    }
    // Every input is opened and checked against the output before anything is read or written;
    // an input named as the output is named as such, not as an output that `replacing` would allow.
    let out = try OutputFile(path: path)
    defer { out.finish() }
    let kernelFile = try InputFile(path: kernel, role: "kernel")
    let initrdFiles = try initrds.map { (p) throws(DiskImageError) in try InputFile(path: p, role: "initrd") }
    let rootFile = try rootFilesystem.map { (p) throws(DiskImageError) in try InputFile(path: p, role: "rootfs") }
    for input in [kernelFile] + initrdFiles + (rootFile.map { [$0] } ?? []) where input.identity == out.existing {
      throw .outputIsInput(output: path, role: input.role, input: input.path)
    }
    guard out.existing == nil || replacing else { throw .outputExists(path: path) }

    let kernelBytes = try kernelFile.readAll()
    do throws(KernelImageError) {
      _ = try ArmImageHeader(bytes: kernelBytes, fileSize: UInt64(kernelBytes.count))
    } catch { throw .notAnArm64Image(path: kernel, reason: error.description) }
    var fat = FAT32Builder()
    fat.addFile("/loader/loader.conf", contents: Array("default \(BootDiskImage.entryID)\ntimeout 0\n".utf8))
    fat.addFile("/loader/entries/\(BootDiskImage.entryID).conf", contents: Array(entryText.utf8))
    fat.addFile("/vmlinuz", contents: kernelBytes)
    fat.addFile("/EFI/BOOT/BOOTAA64.EFI", contents: kernelBytes)
    for (i, file) in initrdFiles.enumerated() { fat.addFile("/" + BootDiskImage.initrdName(i), contents: try file.readAll()) }

    let mib: UInt64 = 1 << 20
    let payload = UInt64(fat.payloadBytes)
    var espBytes = max(BootDiskImage.minimumESPBytes, (payload + payload / 16 + 8 * mib + mib - 1) / mib * mib)
    let espStart: UInt64 = 2048
    var esp: [UInt8] = []
    let volumeID = CRC32.checksum(Array((entryText + "\(payload)").utf8))
    while true {
      do throws(DiskImageError) {
        esp = try fat.build(totalSectors: espBytes / 512, hiddenSectors: espStart, volumeID: volumeID, label: "REALM-ESP")
        break
      } catch {
        guard error == .volumeTooSmall, espBytes < 1 << 40 else { throw error }
        espBytes += espBytes / 4 / mib * mib + mib
      }
    }
    let espSectors = espBytes / 512
    var entries = [GPTEntry(type: GUIDPartitionTable.efiSystemPartitionType,
                            unique: GPTWriter.guid(seed: Array("esp\(volumeID)".utf8)),
                            firstLBA: espStart, lastLBA: espStart + espSectors - 1, name: "EFI system partition")]
    var nextLBA = espStart + espSectors
    let rootSize = rootFile?.size ?? 0
    if rootFile != nil {
      let sectors = max(1, (rootSize + mib - 1) / mib * mib / 512)
      entries.append(GPTEntry(type: GUIDPartitionTable.linuxFilesystemType,
                              unique: GPTWriter.guid(seed: Array("root\(volumeID)\(rootSize)".utf8)),
                              firstLBA: nextLBA, lastLBA: nextLBA + sectors - 1, name: "root"))
      nextLBA += sectors
    }
    let totalSectors = nextLBA + 2048  // 1 MiB tail holds the backup array and header
    let diskGUID = GPTWriter.guid(seed: Array("disk\(volumeID)\(rootSize)".utf8))
    let array = GPTWriter.entryArray(entries)
    let arrayCRC = CRC32.checksum(array)
    let last = totalSectors - 1
    let backupArrayLBA = last - GPTWriter.arraySectors

    try out.create(size: totalSectors * 512)
    try out.write(GPTWriter.protectiveMBR(totalSectors: totalSectors), at: 0)
    try out.write(GPTWriter.header(myLBA: 1, alternateLBA: last, arrayLBA: 2, totalSectors: totalSectors,
                                   diskGUID: diskGUID, arrayCRC: arrayCRC), at: 512)
    try out.write(array, at: 2 * 512)
    try out.write(esp, at: espStart * 512)
    if let rootFile {
      try out.copy(rootFile, at: entries[1].firstLBA * 512) { progress($0, rootSize) }
    }
    try out.write(array, at: backupArrayLBA * 512)
    try out.write(GPTWriter.header(myLBA: last, alternateLBA: 1, arrayLBA: backupArrayLBA, totalSectors: totalSectors,
                                   diskGUID: diskGUID, arrayCRC: arrayCRC), at: last * 512)
    try out.commit()
  }
}
