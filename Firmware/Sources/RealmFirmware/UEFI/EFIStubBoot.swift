import FirmwareSupport
import FirmwareCore

// Boot mode "efi" on a disk whose ESP has BLS entries but no \EFI\BOOT\BOOTAA64.EFI: the default
// entry's kernel starts through its own EFI stub, as systemd-boot starts it. The kernel file (a
// PE32+ EFI-stub Image, or a zboot image, also PE) is loaded as an EFI application whose Loaded
// Image carries the command line as LoadOptions (UCS-2); its initrds, concatenated, come from
// EFI_LOAD_FILE2_PROTOCOL on a handle whose device path is VenMedia(LINUX_EFI_INITRD_MEDIA_GUID),
// where the stub looks first (Linux 5.8+, drivers/firmware/efi/libstub/efi-stub-helper.c).

/// The initrds the LoadFile2 protocol hands out: files of one volume, read straight into the
/// caller's buffer when asked.
struct EFIInitrdMedia {
  var volume: Int
  var files: [FATDirectoryEntry]
  /// Their total size.
  var size: UInt64
}

enum EFIStubBoot {
  /// Loads the default BLS entry's kernel from the ESP `volume` (on handle `partition`, device
  /// path `partitionPath`), sets its LoadOptions and installs the initrd's LoadFile2 protocol
  /// (nothing when the entry has no initrd). Returns the image and its name for messages.
  static func load(_ env: inout EFIEnvironment, platform: PlatformDescription, volume: Int, partition: EFIHandle,
                   partitionPath: EFIDevicePath, parent: EFIHandle) throws(BootFailure) -> (image: EFIHandle, name: String) {
    let entry = try KernelLoader.chooseEntry(&env.storage.volumes[volume], requested: platform.bootEntry)
    let name = ByteString.string(entry.linux)
    var initrd = EFIInitrdMedia(volume: volume, files: [], size: 0)
    for path in entry.initrds {
      do throws(FATError) { initrd.files.append(try env.storage.volumes[volume].lookup(path)) } catch {
        throw BootFailure("UEFI: initrd \(ByteString.string(path)): \(error)")
      }
      initrd.size += UInt64(initrd.files[initrd.files.count - 1].size)
    }

    let image = try EFIBoot.loadImage(&env, path: entry.linux, name: name, kind: "a kernel with an EFI stub",
                                      volume: volume, partition: partition, partitionPath: partitionPath, parent: parent)

    do throws(EFIStatus) {
      // The command line as the direct path builds it, NUL-terminated UCS-2 (its size counts the NUL).
      let commandLine = entry.commandLine(appending: platform.bootArguments)
      if !commandLine.isEmpty, let loaded = env.images.first(where: { $0.handle == image })?.loadedImage {
        let units = ByteString.ucs2(fromUTF8: commandLine) + [0]
        let options = try env.pool.allocate(type: .loaderData, size: units.count * 2, in: &env.memory)
        units.withUnsafeBytes { pointer(options)!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        loaded.pointee.load_options = pointer(options)
        loaded.pointee.load_options_size = UInt32(units.count * 2)
      }
      if !initrd.files.isEmpty {
        env.initrdMedia = initrd
        _ = try env.handles.install([
          EFIProtocolInterface(guid: .devicePath, interface: try env.poolCopy(EFIDevicePath(nodes: [.linuxInitrdMedia]).bytes)),
          EFIProtocolInterface(guid: .loadFile2, interface: address(withUnsafeMutablePointer(to: &fw_efi_initrd_load_file2) { $0 })),
        ])
      }
    } catch { throw BootFailure("UEFI: setting up the environment: \(error)") }
    log("UEFI: \(name) through its EFI stub, initrd \(initrd.size) bytes by LoadFile2")
    return (image, name)
  }
}

/// LoadFile (UEFI 2.10 §13.2) of the initrd handle: the entry's initrds, concatenated. A nil or
/// short buffer gets EFI_BUFFER_TOO_SMALL and the size (the stub asks for the size first).
@_cdecl("efi_initrd_load_file")
func efiInitrdLoadFile(_ this: RawPointer?, _ filePath: RawPointer?, _ bootPolicy: UInt8, _ size: Out<UInt64>?,
                       _ buffer: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let media = env.initrdMedia else { throw .notFound }
    guard this != nil, let size, filePath != nil else { throw .invalidParameter }
    // The path left after LocateDevicePath matched the handle's: the End node (as edk2 requires).
    guard try devicePath(at: UnsafeRawPointer(filePath)).nodes.isEmpty else { throw .notFound }
    // BootPolicy asks for a boot selection, which an initrd is not (LoadFile2 never takes one).
    guard bootPolicy == 0 else { throw .unsupported }
    guard let buffer, size.pointee >= media.size else {
      size.pointee = media.size
      throw .bufferTooSmall
    }
    var offset = 0
    for f in media.files {
      do throws(FATError) {
        try env.storage.volumes[media.volume].readFile(f, into: UnsafeMutableRawBufferPointer(start: buffer + offset, count: Int(f.size)))
      } catch { throw .deviceError }
      offset += Int(f.size)
    }
    size.pointee = media.size
  }
}
