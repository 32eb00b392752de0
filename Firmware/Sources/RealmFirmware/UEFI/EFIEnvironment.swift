import FirmwareSupport
import FirmwareCore

/// What the boot and runtime services keep between calls. The services are C function pointers
/// (efi.c's tables), which cannot capture, so they reach this one global.
struct EFIEnvironment {
  var memory: EFIMemoryMap
  var pool = EFIPool()
  var handles = EFIHandleDatabase()
  var variables = EFIVariableStore()
  var images: [LoadedEFIImage] = []
  var events = EFIEvents()
  var storage = EFIStorage()
  /// The initrd of a kernel EFIStubBoot starts, for its LoadFile2 protocol.
  var initrdMedia: EFIInitrdMedia? = nil
  /// efi.c's configuration table array, which the system table points at.
  let configurationTables = withUnsafeMutablePointer(to: &fw_efi_configuration_tables) {
    UnsafeMutableRawPointer($0).assumingMemoryBound(to: efi_configuration_table.self)
  }
  let configurationCapacity = Int(FW_EFI_CONFIGURATION_TABLES)
  /// Runs once, inside ExitBootServices, before it returns: devices quiesced, Realm clean-up.
  var beforeExit: () -> Void
  var exitedBootServices = false
  var monotonicCount: UInt64 = 0

  /// The services' one instance; nil until `start` (and after a failed start).
  nonisolated(unsafe) static var current: EFIEnvironment? = nil
}

/// One image LoadImage placed: its pages, entry point and protocol structure.
struct LoadedEFIImage {
  var handle: EFIHandle
  var base: UInt64
  var pages: UInt64
  var entry: UInt64
  var subsystem: EFISubsystem
  var loadedImage: UnsafeMutablePointer<efi_loaded_image>
  /// Where StartImage saved the state Exit unwinds to (nil until started).
  var exitContext: UnsafeMutablePointer<UInt64>? = nil
}

/// Runs a service body against the environment and turns its outcome into an EFI_STATUS.
@inline(__always)
func efiService(_ body: (inout EFIEnvironment) throws(EFIStatus) -> Void) -> UInt64 {
  guard EFIEnvironment.current != nil else { return EFIStatus.notReady.rawValue }
  do throws(EFIStatus) {
    try body(&EFIEnvironment.current!)
    return EFIStatus.success.rawValue
  } catch {
    return error.rawValue
  }
}

/// Reads a GUID a caller passed by pointer.
func guid(_ pointer: UnsafeRawPointer?) throws(EFIStatus) -> EFIGUID {
  guard let pointer, let g = EFIGUID(bytes: UnsafeRawBufferPointer(start: pointer, count: 16)) else {
    throw .invalidParameter
  }
  return g
}

func address(_ pointer: UnsafeRawPointer?) -> UInt64 { UInt64(UInt(bitPattern: pointer)) }
func pointer(_ address: UInt64) -> UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: UInt(address)) }
/// efi.c's system table.
var systemTable: UnsafeMutablePointer<efi_system_table> { withUnsafeMutablePointer(to: &fw_efi_system_table) { $0 } }

/// The length of the device path at `pointer`, End node included (callers' paths are bounded
/// to 64 KiB so that a missing End node cannot walk the whole of RAM).
func devicePath(at pointer: UnsafeRawPointer?) throws(EFIStatus) -> EFIDevicePath {
  guard let pointer else { throw .invalidParameter }
  var length = 0
  while true {
    guard length + 4 <= 1 << 16 else { throw .invalidParameter }
    let type = pointer.load(fromByteOffset: length, as: UInt8.self)
    let subtype = pointer.load(fromByteOffset: length + 1, as: UInt8.self)
    let nodeLength = Int(pointer.load(fromByteOffset: length + 2, as: UInt8.self))
      | Int(pointer.load(fromByteOffset: length + 3, as: UInt8.self)) << 8
    guard nodeLength >= 4 else { throw .invalidParameter }
    length += nodeLength
    if type == 0x7F && subtype == 0xFF { break }
  }
  do throws(EFIDevicePathError) {
    return try EFIDevicePath(parsing: UnsafeRawBufferPointer(start: pointer, count: length))
  } catch { throw .invalidParameter }
}

extension EFIEnvironment {
  /// Copies `bytes` into pool memory of `type` (device paths, file buffers the caller frees).
  mutating func poolCopy(_ bytes: [UInt8], type: EFIMemoryType = .bootServicesData) throws(EFIStatus) -> UInt64 {
    let a = try pool.allocate(type: type, size: bytes.count, in: &memory)
    bytes.withUnsafeBytes { src in
      if let s = src.baseAddress { pointer(a)!.copyMemory(from: s, byteCount: bytes.count) }
    }
    return a
  }

  /// InstallConfigurationTable: adds, replaces or (with a nil table) removes the table of `vendor`.
  mutating func installConfigurationTable(_ vendor: EFIGUID, _ table: UInt64) throws(EFIStatus) {
    let system = systemTable
    let count = Int(system.pointee.number_of_table_entries)
    for i in 0..<count {
      let entryGUID = try guid(UnsafeRawPointer(configurationTables + i))
      guard entryGUID == vendor else { continue }
      if table == 0 {
        (configurationTables + i).update(from: configurationTables + i + 1, count: count - i - 1)
        system.pointee.number_of_table_entries -= 1
      } else {
        configurationTables[i].vendor_table = pointer(table)
      }
      refreshSystemTableCRC()
      return
    }
    guard table != 0 else { throw .notFound }
    guard count < configurationCapacity else { throw .outOfResources }
    let raw = UnsafeMutableRawPointer(configurationTables + count)
    vendor.bytes.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: 16) }
    configurationTables[count].vendor_table = pointer(table)
    system.pointee.number_of_table_entries += 1
    refreshSystemTableCRC()
  }

  func refreshSystemTableCRC() {
    EFIEnvironment.sealHeader(UnsafeMutableRawPointer(systemTable))
  }

  /// Recomputes a table header's CRC32 (over HeaderSize bytes with the CRC field zero). Without
  /// CRC32's table, which lives in the heap: SetVirtualAddressMap seals tables after the OS has
  /// taken the heap back (and headers are a hundred bytes or so).
  static func sealHeader(_ table: UnsafeMutableRawPointer) {
    let size = Int(table.load(fromByteOffset: 12, as: UInt32.self))
    table.storeBytes(of: 0, toByteOffset: 16, as: UInt32.self)
    let crc = CRC32.checksumWithoutTable(UnsafeRawBufferPointer(start: table, count: size))
    table.storeBytes(of: crc, toByteOffset: 16, as: UInt32.self)
  }
}
