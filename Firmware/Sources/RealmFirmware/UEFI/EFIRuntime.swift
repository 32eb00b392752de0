import FirmwareSupport
import FirmwareCore

// MARK: SetVirtualAddressMap (UEFI 2.10 §8.4)
// efi.c's efi_set_virtual_address_map accepts the call once, after ExitBootServices, calls this
// for the checks and the tables, then re-relocates the image by the shift this returns. This
// runs on the OS's side of ExitBootServices, on the firmware's identity map: it reads the OS's
// map in place and writes only the image (the tables), never the heap (boot-services memory
// the OS owns now) nor the console.

@_cdecl("efi_prepare_virtual_address_map")
func efiPrepareVirtualAddressMap(_ mapSize: UInt64, _ descriptorSize: UInt64, _ version: UInt32,
                                 _ map: UnsafeRawPointer?, _ shift: Out<UInt64>) -> UInt64 {
  typealias Map = RuntimeAddressMap<UnsafeRawBufferPointer>
  guard let map, descriptorSize <= UInt64(Map.maximumDescriptorSize),
        mapSize <= descriptorSize * UInt64(Map.maximumDescriptors) else { return EFIStatus.invalidParameter.rawValue }
  let virtualMap: Map
  do throws(RuntimeAddressMapError) {
    virtualMap = try Map(UnsafeRawBufferPointer(start: map, count: Int(mapSize)), descriptorSize: Int(descriptorSize),
                         version: version)
  } catch { return EFIStatus.invalidParameter.rawValue }
  let region = EFIBoot.runtimeRegion()
  guard let delta = virtualMap.shift(covering: region.start, end: region.end) else { return EFIStatus.noMapping.rawValue }
  fw_efi_runtime_set_mapping(region.start, region.end, delta)

  // The runtime services table's functions, all in the image.
  withUnsafeMutableBytes(of: &fw_efi_runtime_services.functions) { functions in
    for offset in stride(from: 0, to: functions.count, by: 8) {
      functions.storeBytes(of: functions.load(fromByteOffset: offset, as: UInt64.self) &+ delta, toByteOffset: offset, as: UInt64.self)
    }
  }
  // The system table's runtime fields, as edk2 converts them. The configuration tables keep
  // their physical addresses (UEFI does not convert them; Linux reads them, the RT properties
  // table among them, by physical address after its stub's SetVirtualAddressMap). What
  // ExitBootServices ended (the consoles, the boot services) is cleared.
  let system = systemTable
  func converted<T>(_ p: UnsafeMutablePointer<T>?) -> UnsafeMutablePointer<T>? {
    virtualMap.convert(address(p)).flatMap { UnsafeMutablePointer(bitPattern: UInt($0)) }
  }
  system.pointee.firmware_vendor = converted(system.pointee.firmware_vendor)
  system.pointee.configuration_table = converted(system.pointee.configuration_table)
  system.pointee.runtime_services = converted(system.pointee.runtime_services)
  system.pointee.console_in_handle = nil
  system.pointee.con_in = nil
  system.pointee.console_out_handle = nil
  system.pointee.con_out = nil
  system.pointee.standard_error_handle = nil
  system.pointee.std_err = nil
  system.pointee.boot_services = nil
  EFIEnvironment.sealHeader(UnsafeMutableRawPointer(withUnsafeMutablePointer(to: &fw_efi_runtime_services) { $0 }))
  EFIEnvironment.sealHeader(UnsafeMutableRawPointer(system))
  shift.pointee = delta
  return EFIStatus.success.rawValue
}
