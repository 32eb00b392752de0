import Crypto
import DiskImage
import FirmwareCore
import Foundation
import TestSupport
import Testing
@testable import RealmVMM

/// `measure`'s REMs for the bundled firmware: the firmware's decisions and measurements taken on
/// the host, checked against the REMs computed here from the files with swift-crypto.
@Suite struct FirmwareBootPredictionTests {
  static let kernelBytes: [UInt8] = {
    var image = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
    image.replaceSubrange(0..<64, with: KernelImageTests.header(imageSize: 0x20_0000))
    return image
  }()
  static let initrds: [[UInt8]] = [[UInt8](repeating: 0x11, count: 5000), Array("second initrd".utf8)]

  /// A disk made as `image create` makes it, and a firmware file (any bytes: only loaded).
  static func disk(in scratch: ScratchDirectory, name: String = "disk.img", options: String = "root=/dev/vda2 ro") throws -> String {
    let kernel = scratch.file("Image-\(name)", kernelBytes)
    let initrdPaths = initrds.enumerated().map { scratch.file("initrd\($0.offset)-\(name)", $0.element) }
    let path = scratch.path + "/" + name
    try BootDiskImage(kernel: kernel, initrds: initrdPaths, commandLine: options, title: "Test").write(to: path)
    return path
  }

  static func config(_ scratch: ScratchDirectory, disks: [String], algorithm: RealmHashAlgorithm = .sha256,
                     bootMode: FirmwareBootMode = .automatic, bootEntry: String? = nil) -> MachineConfig {
    let firmware = scratch.file("realm-fw.bin", [UInt8](repeating: 0xC3, count: 20_000))
    return MachineConfig(
      memorySize: 256 << 20, cpus: 1, boot: .firmware(path: firmware), kernelParameters: "quiet loglevel=4",
      disks: disks.map { DiskConfig(path: $0) }, realm: true, realmOptions: RealmOptions(algorithm: algorithm),
      bootEntry: bootEntry, bootMode: bootMode)
  }

  /// REM ← H(REM || SHA-256(item)), from zeros, as the RMM extends.
  static func expectedREMs(dtb: [UInt8], commandLine: String, algorithm: RealmHashAlgorithm) -> [[UInt8]] {
    func h(_ bytes: [UInt8]) -> [UInt8] {
      algorithm == .sha256 ? Array(Crypto.SHA256.hash(data: bytes)) : Array(Crypto.SHA512.hash(data: bytes))
    }
    func sha256(_ bytes: [UInt8]) -> [UInt8] { Array(Crypto.SHA256.hash(data: bytes)) }
    let zero = [UInt8](repeating: 0, count: algorithm.digestSize)
    let rem0 = h(zero + sha256(dtb))
    let rem1 = h(zero + sha256(kernelBytes))
    let rem2 = h(h(zero + sha256(Array(commandLine.utf8))) + sha256(initrds.flatMap { $0 }))
    return [rem0, rem1, rem2, zero]
  }

  /// The DTB as the firmware copies it: the header's big-endian totalsize bytes.
  static func firmwareCopy(of dtb: [UInt8]) -> [UInt8] {
    let size = Int(dtb[4]) << 24 | Int(dtb[5]) << 16 | Int(dtb[6]) << 8 | Int(dtb[7])
    return Array(dtb.prefix(size))
  }

  @Test(arguments: [RealmHashAlgorithm.sha256, .sha512])
  func blsDiskREMsMatchAnIndependentComputation(algorithm: RealmHashAlgorithm) throws {
    let scratch = ScratchDirectory()
    let config = Self.config(scratch, disks: [try Self.disk(in: scratch)], algorithm: algorithm)
    let rim = try RIMPrediction(config: config, profile: .emulatedV13, algorithmOverride: nil)
    let boot = try FirmwareBootPrediction(deviceTree: rim.deviceTree, disks: config.disks, memorySize: config.memorySize)
    #expect(boot.entry == "realm-run")
    #expect(boot.measurements.map(\.item) == [.deviceTree, .kernel, .commandLine, .initrd])
    // the entry's options, then the DTB's /chosen/bootargs (realm-run's parameters)
    let expected = Self.expectedREMs(dtb: Self.firmwareCopy(of: rim.deviceTree), commandLine: "root=/dev/vda2 ro quiet loglevel=4",
                                     algorithm: algorithm)
    #expect(MeasuredBoot.registers(after: boot.measurements, algorithm: algorithm) == expected)
  }

  /// A disk without a partition table first: the firmware moves on to the next disk, and so does
  /// the prediction.
  @Test func aDiskWithNothingToBootIsSkipped() throws {
    let scratch = ScratchDirectory()
    let junk = scratch.file("junk.img", [UInt8](repeating: 0xEE, count: 1 << 20))
    let good = try Self.disk(in: scratch)
    let config = Self.config(scratch, disks: [junk, good])
    let rim = try RIMPrediction(config: config, profile: .emulatedV13, algorithmOverride: nil)
    let boot = try FirmwareBootPrediction(deviceTree: rim.deviceTree, disks: config.disks, memorySize: config.memorySize)
    #expect(boot.disk == good)
  }

  /// The UEFI path (--boot-mode efi): the REMs are the boot loaders' business, not known.
  @Test func uefiPathIsUnknown() throws {
    let scratch = ScratchDirectory()
    let disk = try Self.disk(in: scratch)
    let config = Self.config(scratch, disks: [disk], bootMode: .efi)
    let rim = try RIMPrediction(config: config, profile: .emulatedV13, algorithmOverride: nil)
    #expect(throws: FirmwareBootPrediction.Unknown.uefi(disk: disk, path: .efi)) {
      _ = try FirmwareBootPrediction(deviceTree: rim.deviceTree, disks: config.disks, memorySize: config.memorySize)
    }
  }

  /// A requested entry that is not there: the firmware fails that disk, and the REMs are unknown.
  @Test func aMissingRequestedEntryLeavesNothingToBoot() throws {
    let scratch = ScratchDirectory()
    let config = Self.config(scratch, disks: [try Self.disk(in: scratch)], bootEntry: "other")
    let rim = try RIMPrediction(config: config, profile: .emulatedV13, algorithmOverride: nil)
    #expect(throws: FirmwareBootPrediction.Unknown.noBootableDisk(["no usable boot entry: requested boot entry not found"])) {
      _ = try FirmwareBootPrediction(deviceTree: rim.deviceTree, disks: config.disks, memorySize: config.memorySize)
    }
  }

  /// A corrupt disk (its ESP's boot sector overwritten) offers nothing; the reason is the FAT reader's.
  @Test func aCorruptESPIsNamed() throws {
    let scratch = ScratchDirectory()
    let path = try Self.disk(in: scratch)
    var bytes = scratch.read("disk.img")
    // the ESP starts at LBA 2048 in image create's layout
    bytes.replaceSubrange(2048 * 512..<2049 * 512, with: [UInt8](repeating: 0, count: 512))
    _ = scratch.file("disk.img", bytes)
    let config = Self.config(scratch, disks: [path])
    let rim = try RIMPrediction(config: config, profile: .emulatedV13, algorithmOverride: nil)
    #expect(throws: FirmwareBootPrediction.Unknown.noBootableDisk(["EFI system partition: not a FAT file system"])) {
      _ = try FirmwareBootPrediction(deviceTree: rim.deviceTree, disks: config.disks, memorySize: config.memorySize)
    }
  }
}
