import FirmwareSupport
import FirmwareCore

// LoadImage, StartImage, Exit and UnloadImage (UEFI 2.10 §7.4): PE32+ AArch64 images from
// memory, placed at their section alignment in LoaderCode pages, relocated, and started on the
// firmware's stack with the state Exit unwinds to.

extension EFIEnvironment {
  /// Loads the PE image in `file`, installs its Loaded Image protocol and returns its handle.
  /// - Parameters:
  ///   - device: the handle of the device (partition) the file came from, or 0.
  ///   - filePath: the file's path on that device (a File node), for the Loaded Image protocol.
  ///   - fullPath: the whole device path, for the Loaded Image Device Path protocol.
  mutating func loadImage(_ file: UnsafeRawBufferPointer, parent: EFIHandle, device: EFIHandle,
                          filePath: EFIDevicePath?, fullPath: EFIDevicePath?) throws(EFIStatus) -> EFIHandle {
    let image: PEImage<UnsafeRawBufferPointer>
    do throws(PEImageError) { image = try PEImage(bytes: file) } catch {
      log("LoadImage: \(error)")
      throw .loadError
    }
    let page = EFIMemoryMap.pageSize
    let alignment = max(UInt64(image.sectionAlignment), page)
    let size = (UInt64(image.sizeOfImage) + page - 1) & ~(page - 1)
    let pages = (size + alignment - page) / page
    let raw = try memory.allocatePages(.anyPages, type: .loaderCode, pages: pages)
    let base = (raw + alignment - 1) & ~(alignment - 1)
    if base > raw { try memory.freePages(at: raw, pages: (base - raw) / page) }
    let tail = raw + pages * page - (base + size)
    if tail > 0 { try memory.freePages(at: base + size, pages: tail / page) }
    do throws(PEImageError) {
      try image.load(into: UnsafeMutableRawBufferPointer(start: pointer(base), count: Int(size)), at: base)
    } catch {
      try? memory.freePages(at: base, pages: size / page)
      log("LoadImage: \(error)")
      throw .loadError
    }
    fw_sync_icache(base, size)

    let info = try pool.allocate(type: .loaderData, size: MemoryLayout<efi_loaded_image>.size, in: &memory)
    let loaded = pointer(info)!.bindMemory(to: efi_loaded_image.self, capacity: 1)
    pointer(info)!.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<efi_loaded_image>.size)
    loaded.pointee.revision = 0x1000
    loaded.pointee.parent_handle = pointer(parent)
    loaded.pointee.system_table = systemTable
    loaded.pointee.device_handle = pointer(device)
    if let filePath { loaded.pointee.file_path = pointer(try poolCopy(filePath.bytes, type: .loaderData)) }
    loaded.pointee.image_base = pointer(base)
    loaded.pointee.image_size = size
    loaded.pointee.image_code_type = EFIMemoryType.loaderCode.rawValue
    loaded.pointee.image_data_type = EFIMemoryType.loaderData.rawValue
    loaded.pointee.unload = efi_unload_image
    var protocols = [EFIProtocolInterface(guid: .loadedImage, interface: info)]
    if let fullPath {
      protocols.append(EFIProtocolInterface(guid: .loadedImageDevicePath, interface: try poolCopy(fullPath.bytes)))
    }
    let handle = try handles.install(protocols)
    images.append(LoadedEFIImage(handle: handle, base: base, pages: size / page, entry: base + UInt64(image.entryPoint),
                                 subsystem: image.subsystem, loadedImage: loaded))
    return handle
  }

  /// Frees an image's pages and removes its protocols.
  mutating func unloadImage(_ handle: EFIHandle) throws(EFIStatus) {
    guard let i = images.firstIndex(where: { $0.handle == handle }) else { throw .invalidParameter }
    let image = images.remove(at: i)
    try? memory.freePages(at: image.base, pages: image.pages)
    if let protocols = try? handles.protocols(on: handle) {
      for g in protocols {
        if let a = try? handles.interface(g, on: handle) {
          try? handles.uninstall([EFIProtocolInterface(guid: g, interface: a)], from: handle)
        }
      }
    }
  }
}

@_cdecl("efi_load_image")
func efiLoadImage(_ bootPolicy: UInt8, _ parent: UInt64, _ path: RawPointer?, _ source: RawPointer?,
                  _ sourceSize: UInt64, _ imageHandle: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let imageHandle, env.handles.contains(parent) else { throw .invalidParameter }
    let fullPath = path == nil ? nil : try devicePath(at: UnsafeRawPointer(path))
    if let source, sourceSize > 0 {
      imageHandle.pointee = try env.loadImage(UnsafeRawBufferPointer(start: source, count: Int(sourceSize)),
                                              parent: parent, device: 0, filePath: fullPath, fullPath: fullPath)
      return
    }
    // From a device path alone: the file after the longest prefix that has a Simple File System.
    guard let fullPath else { throw .invalidParameter }
    let (device, prefixLength) = try env.locateDevicePath(.simpleFileSystem, fullPath)
    let filePath: EFIDevicePath
    do throws(EFIDevicePathError) { filePath = try EFIDevicePath(parsing: fullPath.bytes[prefixLength...]) } catch {
      throw .invalidParameter
    }
    guard let fatPath = filePath.fatPath else { throw .notFound }
    let fs = try env.handles.interface(.simpleFileSystem, on: device)
    let volume = Int(pointer(fs)!.assumingMemoryBound(to: fw_efi_simple_file_system.self).pointee.id)
    let file = try env.openFile(volume: volume, path: resolvePath(fatPath, from: [0x2F]))
    let index = try env.fileIndex(pointer(file))
    let opened = env.storage.files[index]
    defer { env.closeFile(index) }
    guard !opened.isDirectory else { throw .notFound }
    imageHandle.pointee = try env.loadImage(
      UnsafeRawBufferPointer(start: pointer(opened.contents), count: Int(opened.entry?.size ?? 0)),
      parent: parent, device: device, filePath: filePath, fullPath: fullPath)
  }
}

@_cdecl("efi_start_image")
func efiStartImage(_ handle: UInt64, _ exitDataSize: Out<UInt64>?, _ exitData: Out<UInt64>?) -> UInt64 {
  // The image runs outside any access to the environment: it calls back into the services.
  guard let i = EFIEnvironment.current?.images.firstIndex(where: { $0.handle == handle }),
        let image = EFIEnvironment.current?.images[i], image.exitContext == nil else {
    return EFIStatus.invalidParameter.rawValue
  }
  let context = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(FW_EFI_CONTEXT_WORDS))
  EFIEnvironment.current!.images[i].exitContext = context
  exitDataSize?.pointee = 0
  let status = fw_efi_start_image(image.entry, pointer(handle), systemTable, context)
  // An application is unloaded when it returns or exits; a driver stays resident.
  if image.subsystem == .application { _ = efiService { env throws(EFIStatus) in try env.unloadImage(handle) } }
  return status
}

@_cdecl("efi_exit")
func efiExit(_ handle: UInt64, _ status: UInt64, _ size: UInt64, _ data: RawPointer?) -> UInt64 {
  guard let context = EFIEnvironment.current?.images.first(where: { $0.handle == handle })?.exitContext else {
    return EFIStatus.invalidParameter.rawValue
  }
  fw_efi_exit_to(context, status)
}

@_cdecl("efi_unload_image")
func efiUnloadImage(_ handle: UnsafeMutableRawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in try env.unloadImage(address(handle)) }
}
