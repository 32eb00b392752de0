import FirmwareCore
import Platform

/// What the bundled firmware will measure into the REMs when it boots a machine's disks: the same
/// decisions it makes in the Realm (FirmwareCore's ``ESPOffer``, ``MeasuredBoot``), taken on the
/// host from the DTB realm-run hands it and the `--disk` images.
///
/// Only the BLS path is known in advance: under UEFI the REMs depend on what the boot loaders
/// and the kernel's EFI stub measure.
public struct FirmwareBootPrediction {
  /// The firmware's measurements, in the order it extends them.
  public let measurements: [BootMeasurement]
  /// The disk image booted.
  public let disk: String
  /// The BLS entry booted (its file name without `.conf`).
  public let entry: String

  /// Why the firmware's measurements are not known in advance.
  public enum Unknown: Error, Equatable, CustomStringConvertible {
    /// The firmware would boot this disk in the UEFI environment.
    case uefi(disk: String, path: BootPath)
    /// No disk offers anything the boot mode takes, or every BLS attempt fails (the reasons).
    case noBootableDisk([String])
    /// The DTB realm-run built could not be read back as the firmware reads it.
    case deviceTree(FirmwareCore.DeviceTreeError)

    public var description: String {
      switch self {
      case .uefi(let disk, let path):
        let how = path == .efi ? "\\EFI\\BOOT\\BOOTAA64.EFI" : "its BLS entry's EFI stub"
        return "the firmware boots \(disk) through \(how) under UEFI: its REMs are what the boot loaders measure, not known in advance"
      case .noBootableDisk(let reasons):
        return "the firmware would find nothing to boot: \(reasons.joined(separator: "; "))"
      case .deviceTree(let error):
        return "the device tree: \(error)"
      }
    }
  }

  /// Predicts the bundled firmware's measured boot of `disks`, in PCI order (the order given),
  /// with the DTB `deviceTree` realm-run loads for it. `memorySize` bounds what is read (the
  /// firmware cannot load a kernel and initrd larger than RAM).
  public init(deviceTree: [UInt8], disks: [DiskConfig], memorySize: UInt64) throws(Unknown) {
    // The firmware copies the blob by its header's totalsize and reads the platform from it.
    let blob: [UInt8]
    let platform: PlatformDescription
    do throws(FirmwareCore.DeviceTreeError) {
      let size = try FirmwareCore.DeviceTree.totalSize(header: Array(deviceTree.prefix(8)))
      guard size <= deviceTree.count else { throw .truncated }
      blob = Array(deviceTree.prefix(size))
      platform = try PlatformDescription(tree: FirmwareCore.DeviceTree(blob: blob))
    } catch { throw .deviceTree(error) }

    var reasons: [String] = []
    for disk in disks {
      let prefix = disks.count > 1 ? "\(disk.path): " : ""
      do throws(DiskReason) {
        let found = try Self.bootBLS(
          disk: disk.path, platform: platform, deviceTree: blob, memorySize: memorySize)
        self = found
        return
      } catch {
        switch error {
        case .nothing(let reason): reasons.append(prefix + reason)
        case .uefi(let path): throw .uefi(disk: disk.path, path: path)
        }
      }
    }
    throw .noBootableDisk(reasons)
  }

  private init(measurements: [BootMeasurement], disk: String, entry: String) {
    self.measurements = measurements
    self.disk = disk
    self.entry = entry
  }

  private enum DiskReason: Error {
    /// The disk offers nothing, or the BLS attempt fails: the firmware moves on to the next disk.
    case nothing(String)
    /// The firmware takes this UEFI path on the disk.
    case uefi(BootPath)
  }

  /// KernelLoader's steps on one disk, up to the measurements.
  private static func bootBLS(
    disk path: String, platform: PlatformDescription, deviceTree: [UInt8], memorySize: UInt64
  ) throws(DiskReason) -> FirmwareBootPrediction {
    var device: FileBlockDevice
    do throws(Errno) { device = try FileBlockDevice(path: path) } catch { throw .nothing("\(path): \(error)") }
    defer { device.close() }
    let esp: GPTPartition
    do throws(GPTError) {
      esp = try GUIDPartitionTable(device: &device).efiSystemPartition()
    } catch { throw .nothing("partition table: \(error)") }
    var volume: FATVolume<PartitionBlockDevice<FileBlockDevice>>
    do throws(FATError) { volume = try FATVolume(device: PartitionBlockDevice(base: device, partition: esp)) } catch {
      throw .nothing("EFI system partition: \(error)")
    }
    guard let bootPath = ESPOffer(volume: &volume).path(mode: platform.bootMode) else {
      throw .nothing("nothing the boot mode \(String(decoding: platform.bootMode.name, as: UTF8.self)) takes on the ESP")
    }
    guard bootPath == .bls else { throw .uefi(bootPath) }

    let entry: BootEntry
    do throws(BootEntryChoiceError) {
      entry = try ESPOffer.chooseEntry(&volume, requested: platform.bootEntry) { _ in }
    } catch { throw .nothing(error.description) }
    let name = ByteString.string(entry.linux)
    let kernelFile: FATDirectoryEntry
    var initrdFiles: [FATDirectoryEntry] = []
    do throws(FATError) {
      kernelFile = try volume.lookup(entry.linux)
      for initrdPath in entry.initrds { initrdFiles.append(try volume.lookup(initrdPath)) }
    } catch { throw .nothing("\(name) or an initrd: \(error)") }
    let total = initrdFiles.reduce(UInt64(kernelFile.size)) { $0 + UInt64($1.size) }
    guard total <= memorySize else { throw .nothing("kernel and initrds (\(total) bytes) do not fit in RAM") }
    let kernel: [UInt8]
    var initrd: [UInt8] = []
    do throws(FATError) {
      kernel = try volume.readFile(kernelFile, limit: Int(kernelFile.size))
      for file in initrdFiles { initrd += try volume.readFile(file, limit: Int(file.size)) }
    } catch { throw .nothing("loading: \(error)") }

    let measurements = deviceTree.withUnsafeBytes { dtb in
      kernel.withUnsafeBytes { kernelBytes in
        initrd.withUnsafeBytes { initrdBytes in
          MeasuredBoot.measurements(
            deviceTree: dtb, kernel: kernelBytes, commandLine: entry.commandLine(appending: platform.bootArguments),
            initrd: initrdBytes)
        }
      }
    }
    return FirmwareBootPrediction(measurements: measurements, disk: path, entry: ByteString.string(entry.id))
  }
}

/// A disk image file read in 512-byte sectors (the firmware's view of a `--disk`), read-only.
struct FileBlockDevice: BlockDevice {
  let descriptor: FileDescriptor
  let sectorCount: UInt64

  init(path: String) throws(Errno) {
    descriptor = try FileDescriptor.open(path, O_RDONLY)
    var info = stat()
    guard fstat(descriptor.rawValue, &info) == 0 else {
      let error = Errno.current
      descriptor.close()
      throw error
    }
    sectorCount = UInt64(info.st_size) / 512
  }

  func close() { descriptor.close() }

  mutating func read(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
    let sectors = UInt64(buffer.count / 512)
    guard buffer.count % 512 == 0, lba <= sectorCount, sectors <= sectorCount - lba else { throw .outOfRange }
    let count: Int
    do throws(Errno) { count = try descriptor.read(into: buffer, at: Int64(lba * 512)) } catch { throw .ioError(0) }
    guard count == buffer.count else { throw .outOfRange }
  }
}
