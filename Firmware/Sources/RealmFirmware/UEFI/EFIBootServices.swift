import FirmwareSupport
import FirmwareCore

// The boot services (UEFI 2.10 §7), in efi.c's table order. Each is a C-ABI entry point that
// checks its pointers and hands the work to FirmwareCore's tested types through efiService.

typealias RawPointer = UnsafeMutableRawPointer
typealias Out<T> = UnsafeMutablePointer<T>

// MARK: Task priority: one CPU, no interrupts, so the level is only remembered.

nonisolated(unsafe) var currentTPL: UInt64 = 4  // TPL_APPLICATION

@_cdecl("efi_raise_tpl") func efiRaiseTPL(_ tpl: UInt64) -> UInt64 {
  let old = currentTPL
  currentTPL = tpl
  return old
}
@_cdecl("efi_restore_tpl") func efiRestoreTPL(_ tpl: UInt64) { currentTPL = tpl }

// MARK: Memory

@_cdecl("efi_allocate_pages")
func efiAllocatePages(_ allocation: UInt32, _ type: UInt32, _ pages: UInt64, _ memory: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let memory else { throw .invalidParameter }
    let placement: EFIAllocation
    switch allocation {
    case 0: placement = .anyPages
    case 1: placement = .maxAddress(memory.pointee)
    case 2: placement = .address(memory.pointee)
    default: throw .invalidParameter
    }
    memory.pointee = try env.memory.allocatePages(placement, type: EFIMemoryType(rawValue: type), pages: pages)
  }
}

@_cdecl("efi_free_pages")
func efiFreePages(_ memory: UInt64, _ pages: UInt64) -> UInt64 {
  efiService { env throws(EFIStatus) in try env.memory.freePages(at: memory, pages: pages) }
}

@_cdecl("efi_get_memory_map")
func efiGetMemoryMap(_ size: Out<UInt64>?, _ map: RawPointer?, _ key: Out<UInt64>?,
                     _ descriptorSize: Out<UInt64>?, _ version: Out<UInt32>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let size else { throw .invalidParameter }
    descriptorSize?.pointee = UInt64(EFIMemoryMap.descriptorSize)
    version?.pointee = EFIMemoryMap.descriptorVersion
    let needed = UInt64(env.memory.byteCount)
    guard size.pointee >= needed, let map else {
      size.pointee = needed
      throw .bufferTooSmall
    }
    guard let key else { throw .invalidParameter }
    _ = env.memory.write(into: UnsafeMutableRawBufferPointer(start: map, count: Int(needed)))
    size.pointee = needed
    key.pointee = env.memory.mapKey
  }
}

@_cdecl("efi_allocate_pool")
func efiAllocatePool(_ type: UInt32, _ size: UInt64, _ buffer: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let buffer, size <= UInt64(Int.max) else { throw .invalidParameter }
    buffer.pointee = try env.pool.allocate(type: EFIMemoryType(rawValue: type), size: Int(size), in: &env.memory)
  }
}

@_cdecl("efi_free_pool")
func efiFreePool(_ buffer: UInt64) -> UInt64 {
  efiService { env throws(EFIStatus) in try env.pool.free(buffer, in: &env.memory) }
}

@_cdecl("efi_copy_mem")
func efiCopyMem(_ destination: RawPointer?, _ source: RawPointer?, _ length: UInt64) {
  guard let destination, let source, length > 0 else { return }
  destination.copyMemory(from: source, byteCount: Int(length))  // memmove semantics (libc.c)
}

@_cdecl("efi_set_mem")
func efiSetMem(_ buffer: RawPointer?, _ size: UInt64, _ value: UInt8) {
  guard let buffer, size > 0 else { return }
  buffer.initializeMemory(as: UInt8.self, repeating: value, count: Int(size))
}

@_cdecl("efi_calculate_crc32")
func efiCalculateCRC32(_ data: RawPointer?, _ size: UInt64, _ crc: Out<UInt32>?) -> UInt64 {
  guard let data, let crc, size > 0 else { return EFIStatus.invalidParameter.rawValue }
  crc.pointee = CRC32.checksum(UnsafeRawBufferPointer(start: data, count: Int(size)))
  return EFIStatus.success.rawValue
}

// MARK: Protocols

@_cdecl("efi_install_protocol_interface")
func efiInstallProtocolInterface(_ handle: Out<UInt64>?, _ protocolGUID: RawPointer?, _ interfaceType: UInt32,
                                 _ interface: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let handle, interfaceType == 0 else { throw .invalidParameter }
    let p = EFIProtocolInterface(guid: try guid(protocolGUID), interface: address(interface))
    handle.pointee = try env.handles.install([p], on: handle.pointee == 0 ? nil : handle.pointee)
  }
}

@_cdecl("efi_install_protocols")
func efiInstallProtocols(_ handle: Out<UInt64>?, _ count: UInt64, _ guids: Out<RawPointer?>?,
                         _ interfaces: Out<RawPointer?>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let handle, let guids, let interfaces else { throw .invalidParameter }
    var protocols: [EFIProtocolInterface] = []
    for i in 0..<Int(count) {
      protocols.append(EFIProtocolInterface(guid: try guid(guids[i]), interface: address(interfaces[i])))
    }
    handle.pointee = try env.handles.install(protocols, on: handle.pointee == 0 ? nil : handle.pointee)
  }
}

@_cdecl("efi_uninstall_protocols")
func efiUninstallProtocols(_ handle: UInt64, _ count: UInt64, _ guids: Out<RawPointer?>?,
                           _ interfaces: Out<RawPointer?>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let guids, let interfaces else { throw .invalidParameter }
    var protocols: [EFIProtocolInterface] = []
    for i in 0..<Int(count) {
      protocols.append(EFIProtocolInterface(guid: try guid(guids[i]), interface: address(interfaces[i])))
    }
    try env.handles.uninstall(protocols, from: handle)
  }
}

@_cdecl("efi_reinstall_protocol_interface")
func efiReinstallProtocolInterface(_ handle: UInt64, _ protocolGUID: RawPointer?, _ old: RawPointer?,
                                   _ new: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    try env.handles.reinstall(try guid(protocolGUID), on: handle, old: address(old), new: address(new))
  }
}

@_cdecl("efi_uninstall_protocol_interface")
func efiUninstallProtocolInterface(_ handle: UInt64, _ protocolGUID: RawPointer?, _ interface: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    try env.handles.uninstall([EFIProtocolInterface(guid: try guid(protocolGUID), interface: address(interface))],
                              from: handle)
  }
}

@_cdecl("efi_handle_protocol")
func efiHandleProtocol(_ handle: UInt64, _ protocolGUID: RawPointer?, _ interface: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let interface else { throw .invalidParameter }
    interface.pointee = try env.handles.interface(try guid(protocolGUID), on: handle)
  }
}

@_cdecl("efi_open_protocol")
func efiOpenProtocol(_ handle: UInt64, _ protocolGUID: RawPointer?, _ interface: Out<UInt64>?,
                     _ agent: UInt64, _ controller: UInt64, _ attributes: UInt32) -> UInt64 {
  efiService { env throws(EFIStatus) in
    let found = try env.handles.interface(try guid(protocolGUID), on: handle)
    // TEST_PROTOCOL (4) asks only whether it is there; the others return the interface.
    if attributes != 4 {
      guard let interface else { throw .invalidParameter }
      interface.pointee = found
    }
  }
}

@_cdecl("efi_close_protocol")
func efiCloseProtocol(_ handle: UInt64, _ protocolGUID: RawPointer?, _ agent: UInt64, _ controller: UInt64) -> UInt64 {
  efiService { env throws(EFIStatus) in
    do throws(EFIStatus) { _ = try env.handles.interface(try guid(protocolGUID), on: handle) } catch {
      throw error == .unsupported ? .notFound : error
    }
  }
}

@_cdecl("efi_open_protocol_information")
func efiOpenProtocolInformation(_ handle: UInt64, _ protocolGUID: RawPointer?, _ entries: Out<UInt64>?,
                                _ count: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    _ = try env.handles.interface(try guid(protocolGUID), on: handle)
    guard let entries, let count else { throw .invalidParameter }
    // Nobody holds protocols open BY_DRIVER here: an empty list, in pool memory the caller frees.
    entries.pointee = try env.pool.allocate(type: .bootServicesData, size: 0, in: &env.memory)
    count.pointee = 0
  }
}

@_cdecl("efi_protocols_per_handle")
func efiProtocolsPerHandle(_ handle: UInt64, _ buffer: Out<UInt64>?, _ count: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let buffer, let count else { throw .invalidParameter }
    let guids = try env.handles.protocols(on: handle)
    // An array of pointers to GUIDs: the GUIDs themselves follow the array in the same block.
    let block = try env.pool.allocate(type: .bootServicesData, size: guids.count * 24, in: &env.memory)
    for (i, g) in guids.enumerated() {
      let at = block + UInt64(guids.count * 8 + i * 16)
      g.bytes.withUnsafeBytes { pointer(at)!.copyMemory(from: $0.baseAddress!, byteCount: 16) }
      pointer(block)!.storeBytes(of: at, toByteOffset: i * 8, as: UInt64.self)
    }
    buffer.pointee = block
    count.pointee = UInt64(guids.count)
  }
}

/// LocateHandle's search types.
private func locate(_ env: EFIEnvironment, _ searchType: UInt32, _ protocolGUID: RawPointer?) throws(EFIStatus) -> [EFIHandle] {
  switch searchType {
  case 0: return try env.handles.handles(supporting: nil)                // AllHandles
  case 2: return try env.handles.handles(supporting: try guid(protocolGUID))  // ByProtocol
  default: throw .notFound                                               // ByRegisterNotify: none registered
  }
}

@_cdecl("efi_locate_handle")
func efiLocateHandle(_ searchType: UInt32, _ protocolGUID: RawPointer?, _ searchKey: RawPointer?,
                     _ size: Out<UInt64>?, _ buffer: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let size else { throw .invalidParameter }
    let found = try locate(env, searchType, protocolGUID)
    let needed = UInt64(found.count * 8)
    guard size.pointee >= needed else {
      size.pointee = needed
      throw .bufferTooSmall
    }
    guard let buffer else { throw .invalidParameter }
    for (i, h) in found.enumerated() { buffer[i] = h }
    size.pointee = needed
  }
}

@_cdecl("efi_locate_handle_buffer")
func efiLocateHandleBuffer(_ searchType: UInt32, _ protocolGUID: RawPointer?, _ searchKey: RawPointer?,
                           _ count: Out<UInt64>?, _ buffer: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let count, let buffer else { throw .invalidParameter }
    let found = try locate(env, searchType, protocolGUID)
    let block = try env.pool.allocate(type: .bootServicesData, size: found.count * 8, in: &env.memory)
    for (i, h) in found.enumerated() { pointer(block)!.storeBytes(of: h, toByteOffset: i * 8, as: UInt64.self) }
    buffer.pointee = block
    count.pointee = UInt64(found.count)
  }
}

@_cdecl("efi_locate_protocol")
func efiLocateProtocol(_ protocolGUID: RawPointer?, _ registration: RawPointer?, _ interface: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let interface else { throw .invalidParameter }
    interface.pointee = try env.handles.locate(try guid(protocolGUID))
  }
}

/// LocateDevicePath: the handle with `protocol` whose device path is the longest prefix of the
/// caller's; the caller's pointer moves past that prefix.
@_cdecl("efi_locate_device_path")
func efiLocateDevicePath(_ protocolGUID: RawPointer?, _ path: Out<UInt64>?, _ device: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let path, let device else { throw .invalidParameter }
    let wanted = try devicePath(at: UnsafeRawPointer(pointer(path.pointee)))
    let best = try env.locateDevicePath(try guid(protocolGUID), wanted)
    device.pointee = best.handle
    path.pointee += UInt64(best.prefixLength)
  }
}

@_cdecl("efi_install_configuration_table")
func efiInstallConfigurationTable(_ vendor: RawPointer?, _ table: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in try env.installConfigurationTable(try guid(vendor), address(table)) }
}

@_cdecl("efi_register_protocol_notify")
func efiRegisterProtocolNotify(_ protocolGUID: RawPointer?, _ event: RawPointer?, _ registration: Out<UInt64>?) -> UInt64 {
  // Accepted and never signalled: nothing installs protocols after the boot manager starts an
  // image except the images themselves.
  guard registration != nil else { return EFIStatus.invalidParameter.rawValue }
  registration!.pointee = 1
  return EFIStatus.success.rawValue
}

@_cdecl("efi_connect_controller")
func efiConnectController(_ controller: UInt64, _ driver: RawPointer?, _ remaining: RawPointer?, _ recursive: UInt8) -> UInt64 {
  // Every device is connected when the boot manager starts: nothing more to connect.
  efiService { env throws(EFIStatus) in guard env.handles.contains(controller) else { throw .invalidParameter } }
}

@_cdecl("efi_disconnect_controller")
func efiDisconnectController(_ controller: UInt64, _ driver: UInt64, _ child: UInt64) -> UInt64 {
  efiService { env throws(EFIStatus) in guard env.handles.contains(controller) else { throw .invalidParameter } }
}

// MARK: Time and counters

@_cdecl("efi_stall")
func efiStall(_ microseconds: UInt64) -> UInt64 {
  let frequency = fw_read_cntfrq()
  let ticks = microseconds.multipliedFullWidth(by: frequency)
  let target = frequency == 0 ? 0 : (ticks.high == 0 ? ticks.low / 1_000_000 : UInt64.max / 2)
  let start = fw_read_cntvct()
  while fw_read_cntvct() &- start < target {}
  return EFIStatus.success.rawValue
}

@_cdecl("efi_set_watchdog_timer")
func efiSetWatchdogTimer(_ timeout: UInt64, _ code: UInt64, _ size: UInt64, _ data: RawPointer?) -> UInt64 {
  EFIStatus.success.rawValue  // no watchdog: a hung loader ends at realm-run's --timeout
}

@_cdecl("efi_get_next_monotonic_count")
func efiGetNextMonotonicCount(_ count: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let count else { throw .invalidParameter }
    env.monotonicCount += 1
    count.pointee = env.monotonicCount
  }
}

// MARK: Leaving boot services

@_cdecl("efi_exit_boot_services")
func efiExitBootServices(_ image: UInt64, _ key: UInt64) -> UInt64 {
  var notifications: [EFIEvents.Event] = []
  var first = false
  let status = efiService { env throws(EFIStatus) in
    guard key == env.memory.mapKey else { throw .invalidParameter }
    first = !env.exitedBootServices
    if first { notifications = env.events.exitBootServicesNotifications() }
  }
  guard status == EFIStatus.success.rawValue, first else { return status }
  // Loaders' EXIT_BOOT_SERVICES notifications run outside the environment: they may call services.
  for event in notifications {
    unsafeBitCast(UnsafeRawPointer(bitPattern: UInt(event.notify)), to: EFINotify.self)(event.id, event.context)
  }
  let exited = efiService { env throws(EFIStatus) in
    env.exitedBootServices = true
    env.variables.exitBootServices()
    env.beforeExit()
  }
  guard exited == EFIStatus.success.rawValue else { return exited }
  // From here the OS owns the heap: the runtime services table keeps only the services that
  // need none of it (efi.c).
  fw_efi_runtime_begin()
  EFIEnvironment.sealHeader(UnsafeMutableRawPointer(withUnsafeMutablePointer(to: &fw_efi_runtime_services) { $0 }))
  return exited
}

extension EFIEnvironment {
  /// LocateDevicePath's search: the handle with `protocolGUID` whose device path is the longest
  /// prefix of `wanted`, and that prefix's length in bytes (without its End node).
  func locateDevicePath(_ protocolGUID: EFIGUID, _ wanted: EFIDevicePath) throws(EFIStatus) -> (handle: EFIHandle, prefixLength: Int) {
    let candidates: [EFIHandle]
    do throws(EFIStatus) { candidates = try handles.handles(supporting: protocolGUID) } catch { throw .notFound }
    var best: (handle: EFIHandle, prefixLength: Int)? = nil
    for h in candidates {
      guard let a = try? handles.interface(.devicePath, on: h),
            let p = try? devicePath(at: UnsafeRawPointer(pointer(a))), p.isPrefix(of: wanted) else { continue }
      if best == nil || p.nodeByteCount > best!.prefixLength { best = (h, p.nodeByteCount) }
    }
    guard let best else { throw .notFound }
    return best
  }
}
