/// A 128-bit GUID as UEFI and GPT store it: the first three fields little-endian, the last eight
/// bytes in order, so 5b1b31a1-9562-11d2-8e3f-00a0c969723b is a1 31 1b 5b 62 95 d2 11 8e 3f 00 a0 c9 69 72 3b.
/// Kept as two 64-bit halves of those 16 bytes: comparing, hashing and building one is allocation-free.
public struct EFIGUID: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// Bytes 0–7 of the stored form, little-endian.
  public let low: UInt64
  /// Bytes 8–15 of the stored form, little-endian.
  public let high: UInt64

  /// The GUID written `d1-d2-d3-d4[0]d4[1]-d4[2]…d4[7]`.
  public init(_ d1: UInt32, _ d2: UInt16, _ d3: UInt16,
              _ d4: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) {
    low = UInt64(d1) | UInt64(d2) << 32 | UInt64(d3) << 48
    high = UInt64(d4.0) | UInt64(d4.1) << 8 | UInt64(d4.2) << 16 | UInt64(d4.3) << 24
      | UInt64(d4.4) << 32 | UInt64(d4.5) << 40 | UInt64(d4.6) << 48 | UInt64(d4.7) << 56
  }

  /// The GUID stored in the 16 bytes at `offset`, or nil when they are not all inside `bytes`.
  public init?<C: RandomAccessCollection>(bytes: C, at offset: Int = 0) where C.Element == UInt8, C.Index == Int {
    guard let low = bytes.le64(at: offset), let high = bytes.le64(at: offset + 8) else { return nil }
    self.low = low
    self.high = high
  }

  /// The 16 bytes in stored (mixed-endian) order.
  public var bytes: [UInt8] { low.littleEndianBytes + high.littleEndianBytes }

  /// The text form, lower case: "5b1b31a1-9562-11d2-8e3f-00a0c969723b".
  public var description: String {
    let b = bytes
    let tail = Array(b[10..<16]).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    return ByteString.hex(low & 0xFFFF_FFFF, digits: 8) + "-" + ByteString.hex(low >> 32 & 0xFFFF, digits: 4) + "-"
      + ByteString.hex(low >> 48, digits: 4) + "-" + ByteString.hex(bytes: Array(b[8..<10])) + "-"
      + ByteString.hex(tail, digits: 12)
  }
}

extension EFIGUID {
  // Protocols (UEFI 2.10 and the boot loaders' headers; see /work/shared/reference/uefi-subset.md §1).
  /// EFI_LOADED_IMAGE_PROTOCOL.
  public static let loadedImage = EFIGUID(0x5b1b31a1, 0x9562, 0x11d2, (0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
  /// EFI_DEVICE_PATH_PROTOCOL.
  public static let devicePath = EFIGUID(0x09576e91, 0x6d3f, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
  /// EFI_LOADED_IMAGE_DEVICE_PATH_PROTOCOL.
  public static let loadedImageDevicePath = EFIGUID(0xbc62157e, 0x3e33, 0x4fec, (0x99, 0x20, 0x2d, 0x3b, 0x36, 0xd7, 0x50, 0xdf))
  /// EFI_SIMPLE_FILE_SYSTEM_PROTOCOL.
  public static let simpleFileSystem = EFIGUID(0x964e5b22, 0x6459, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
  /// EFI_FILE_INFO, the information type of EFI_FILE_PROTOCOL.GetInfo.
  public static let fileInfo = EFIGUID(0x09576e92, 0x6d3f, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
  /// EFI_BLOCK_IO_PROTOCOL.
  public static let blockIO = EFIGUID(0x964e5b21, 0x6459, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
  /// EFI_SIMPLE_TEXT_INPUT_PROTOCOL.
  public static let simpleTextInput = EFIGUID(0x387477c1, 0x69c7, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
  /// EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL.
  public static let simpleTextOutput = EFIGUID(0x387477c2, 0x69c7, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
  /// EFI_LOAD_FILE2_PROTOCOL (the initrd of the Linux EFI stub).
  public static let loadFile2 = EFIGUID(0x4006c0c1, 0xfcb3, 0x403e, (0x99, 0x6d, 0x4a, 0x6c, 0x87, 0x24, 0xe0, 0x6d))
  /// LINUX_EFI_INITRD_MEDIA_GUID: the vendor-media device path node carrying LoadFile2 for the
  /// initrd, and the configuration table the stub publishes it in.
  public static let linuxInitrdMedia = EFIGUID(0x5568e427, 0x68fc, 0x4f3d, (0xac, 0x74, 0xca, 0x55, 0x52, 0x31, 0xcc, 0x68))
  /// EFI_DISK_IO_PROTOCOL: byte-granular reads over a handle's Block IO.
  public static let diskIO = EFIGUID(0xce345171, 0xba0b, 0x11d2, (0x8e, 0x4f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
  /// EFI_RNG_PROTOCOL.
  public static let rng = EFIGUID(0x3152bca5, 0xeade, 0x433d, (0x86, 0x2e, 0xc0, 0x1c, 0xdc, 0x29, 0x1f, 0x44))
  /// SHIM_LOCK protocol and shim's variable namespace (MokList, MokSBState, …).
  public static let shimLock = EFIGUID(0x605dab50, 0xe046, 0x4300, (0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23))

  // Configuration tables.
  /// The flattened device tree configuration table.
  public static let deviceTreeTable = EFIGUID(0xb1b621d5, 0xf19c, 0x41a5, (0x83, 0x0b, 0xd9, 0x15, 0x2c, 0x69, 0xaa, 0xe0))
  /// EFI_RT_PROPERTIES_TABLE: which runtime services work after ExitBootServices.
  public static let rtPropertiesTable = EFIGUID(0xeb66918a, 0x7eef, 0x402a, (0x84, 0x2e, 0x93, 0x1d, 0x21, 0xc3, 0x8a, 0xe9))

  // Variables and partitions.
  /// EFI_GLOBAL_VARIABLE: SecureBoot, SetupMode, Boot####, BootOrder, …
  public static let globalVariable = EFIGUID(0x8be4df61, 0x93ca, 0x11d2, (0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c))
  /// EFI_PART_TYPE_EFI_SYSTEM_PART_GUID c12a7328-f81f-11d2-ba4b-00a0c93ec93b.
  public static let efiSystemPartition = EFIGUID(0xc12a7328, 0xf81f, 0x11d2, (0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b))
  /// The Linux filesystem data partition type 0fc63daf-8483-4772-8e79-3d69d8477de4.
  public static let linuxFilesystem = EFIGUID(0x0fc63daf, 0x8483, 0x4772, (0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4))
}
