import FirmwareCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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

  /// Writes the image to `path` (created or truncated).
  public func write(to path: String) throws(DiskImageError) {
    guard !title.contains("\n"), !commandLine.contains("\n") else {
      throw .invalidText(field: title.contains("\n") ? "title" : "command line")
    }
    let kernelBytes = try BootDiskImage.readFile(kernel)
    do throws(KernelImageError) {
      _ = try ArmImageHeader(bytes: Array(kernelBytes.prefix(64)), fileSize: UInt64(kernelBytes.count))
    } catch { throw .notAnArm64Image(path: kernel, reason: error.description) }
    var fat = FAT32Builder()
    fat.addFile("/loader/loader.conf", contents: Array("default \(BootDiskImage.entryID)\ntimeout 0\n".utf8))
    fat.addFile("/loader/entries/\(BootDiskImage.entryID).conf", contents: Array(entryText.utf8))
    fat.addFile("/vmlinuz", contents: kernelBytes)
    fat.addFile("/EFI/BOOT/BOOTAA64.EFI", contents: kernelBytes)
    for (i, p) in initrds.enumerated() { fat.addFile("/" + BootDiskImage.initrdName(i), contents: try BootDiskImage.readFile(p)) }

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
    var rootSize: UInt64 = 0
    if let rootFilesystem {
      rootSize = try BootDiskImage.fileSize(rootFilesystem)
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

    let out = try OutputFile(path: path)
    defer { out.finish() }
    try out.truncate(bytes: totalSectors * 512)
    try out.write(GPTWriter.protectiveMBR(totalSectors: totalSectors), at: 0)
    try out.write(GPTWriter.header(myLBA: 1, alternateLBA: last, arrayLBA: 2, totalSectors: totalSectors,
                                   diskGUID: diskGUID, arrayCRC: arrayCRC), at: 512)
    try out.write(array, at: 2 * 512)
    try out.write(esp, at: espStart * 512)
    if let rootFilesystem { try out.copy(from: rootFilesystem, at: entries[1].firstLBA * 512) }
    try out.write(array, at: backupArrayLBA * 512)
    try out.write(GPTWriter.header(myLBA: last, alternateLBA: 1, arrayLBA: backupArrayLBA, totalSectors: totalSectors,
                                   diskGUID: diskGUID, arrayCRC: arrayCRC), at: last * 512)
  }

  static func readFile(_ path: String) throws(DiskImageError) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw .cannotRead(path: path, reason: String(cString: strerror(errno))) }
    defer { _ = close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw .cannotRead(path: path, reason: String(cString: strerror(errno))) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw .cannotRead(path: path, reason: "not a regular file") }
    guard st.st_size < 1 << 32 else { throw .tooLarge(path: path) }
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
      guard n > 0 else { throw .cannotRead(path: path, reason: n == 0 ? "unexpected end of file" : String(cString: strerror(errno))) }
      done += n
    }
    return bytes
  }

  static func fileSize(_ path: String) throws(DiskImageError) -> UInt64 {
    var st = stat()
    guard stat(path, &st) == 0 else { throw .cannotRead(path: path, reason: String(cString: strerror(errno))) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw .cannotRead(path: path, reason: "not a regular file") }
    return UInt64(st.st_size)
  }
}

/// A file written at explicit offsets (POSIX pwrite), sparse where nothing is written.
final class OutputFile {
  let path: String
  let fd: Int32

  init(path: String) throws(DiskImageError) {
    self.path = path
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
  }

  func finish() { _ = close(fd) }

  func truncate(bytes: UInt64) throws(DiskImageError) {
    guard ftruncate(fd, off_t(bytes)) == 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
  }

  func write(_ bytes: [UInt8], at offset: UInt64) throws(DiskImageError) {
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done)) }
      guard n > 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
      done += n
    }
  }

  func copy(from source: String, at offset: UInt64) throws(DiskImageError) {
    let src = open(source, O_RDONLY)
    guard src >= 0 else { throw .cannotRead(path: source, reason: String(cString: strerror(errno))) }
    defer { _ = close(src) }
    var buffer = [UInt8](repeating: 0, count: 4 << 20)
    var position = offset
    while true {
      let n = buffer.withUnsafeMutableBytes { read(src, $0.baseAddress!, $0.count) }
      guard n >= 0 else { throw .cannotRead(path: source, reason: String(cString: strerror(errno))) }
      if n == 0 { break }
      try write(Array(buffer[0..<n]), at: position)
      position += UInt64(n)
    }
  }
}
