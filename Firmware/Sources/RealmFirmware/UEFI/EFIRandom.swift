import FirmwareSupport
import FirmwareCore

// EFI_RNG_PROTOCOL (UEFI 2.10 §37.5) over RNDR, when the CPU has FEAT_RNG: the Linux stub seeds
// KASLR and the kernel's entropy pool from it, GRUB and systemd-boot use it when present.

enum EFIRandom {
  /// EFI_RNG_ALGORITHM_RAW e43176d7-ab20-4d58-8ded-6abb9f5e8a95: RNDR's output, unconditioned by us.
  static let raw = EFIGUID(0xe431_76d7, 0xab20, 0x4d58, (0x8d, 0xed, 0x6a, 0xbb, 0x9f, 0x5e, 0x8a, 0x95))

  /// Whether ID_AA64ISAR0_EL1.RNDR says the CPU has RNDR.
  static var available: Bool { (fw_read_id_aa64isar0() >> 60) & 0xF != 0 }

  /// Fills `buffer` from RNDR; false when it keeps failing (RNDR may fail now and then).
  static func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
    var offset = 0
    var failures = 0
    while offset < buffer.count {
      var value: UInt64 = 0
      guard fw_rndr(&value) != 0 else {
        failures += 1
        if failures > 64 { return false }
        continue
      }
      let n = min(8, buffer.count - offset)
      withUnsafeBytes(of: value) { buffer.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
      offset += n
    }
    return true
  }
}

@_cdecl("efi_rng_get_info")
func efiRNGGetInfo(_ this: RawPointer?, _ size: Out<UInt64>?, _ list: RawPointer?) -> UInt64 {
  guard let size else { return EFIStatus.invalidParameter.rawValue }
  guard size.pointee >= 16 else {
    size.pointee = 16
    return EFIStatus.bufferTooSmall.rawValue
  }
  guard let list else { return EFIStatus.invalidParameter.rawValue }
  EFIRandom.raw.bytes.withUnsafeBytes { list.copyMemory(from: $0.baseAddress!, byteCount: 16) }
  size.pointee = 16
  return EFIStatus.success.rawValue
}

@_cdecl("efi_rng_get_rng")
func efiRNGGetRNG(_ this: RawPointer?, _ algorithm: RawPointer?, _ size: UInt64, _ buffer: RawPointer?) -> UInt64 {
  guard let buffer, size > 0, size <= 1 << 20 else { return EFIStatus.invalidParameter.rawValue }
  if let algorithm, (try? guid(algorithm)) != EFIRandom.raw { return EFIStatus.unsupported.rawValue }
  return EFIRandom.fill(UnsafeMutableRawBufferPointer(start: buffer, count: Int(size)))
    ? EFIStatus.success.rawValue : EFIStatus.deviceError.rawValue
}
