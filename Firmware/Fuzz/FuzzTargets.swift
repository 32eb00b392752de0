// libFuzzer entry points for every FirmwareCore parser that sees untrusted input.
// Scripts/fuzz-firmware compiles this file with the FirmwareCore sources and one of
// -D FUZZ_FDT, FUZZ_GPT, FUZZ_FAT, FUZZ_BLS, FUZZ_IMAGE, FUZZ_ZSTD. Any trap is a bug.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  #if FUZZ_FDT
  if var tree = try? DeviceTree(blob: bytes) {
    _ = try? PlatformDescription(tree: tree)
    let chosen = tree.chosenNode()
    tree.setStringProperty(chosen, "bootargs", Array("console=ttyAMA0".utf8))
    tree.setU64Property(chosen, "linux,initrd-start", 0x4800_0000)
    let again = tree.serialized()
    guard (try? DeviceTree(blob: again)) != nil else { fatalError("serialized tree does not parse") }
  }
  #elseif FUZZ_GPT
  var padded = bytes
  while padded.count % 512 != 0 { padded.append(0) }
  var device = MemoryBlockDevice(bytes: padded)
  if let gpt = try? GUIDPartitionTable(device: &device) { _ = try? gpt.efiSystemPartition() }
  #elseif FUZZ_FAT
  var padded = bytes
  while padded.count % 512 != 0 { padded.append(0) }
  if var fat = try? FATVolume(device: MemoryBlockDevice(bytes: padded)) {
    var pending: [FATDirectoryEntry?] = [nil]
    var visited = 0
    while let dir = pending.popLast(), visited < 64 {
      visited += 1
      guard let entries = try? fat.entries(of: dir) else { continue }
      for e in entries {
        if e.isDirectory { pending.append(e) } else { _ = try? fat.readFile(e, limit: 1 << 20) }
      }
    }
    _ = try? fat.lookup(Array("/loader/entries/a.conf".utf8))
  }
  #elseif FUZZ_BLS
  if let entry = try? BootEntry(id: Array("fuzz".utf8), text: bytes) {
    let config = (try? LoaderConfiguration(text: bytes)) ?? LoaderConfiguration()
    _ = try? BootEntrySelection.choose([entry], configuration: config, requested: entry.title)
  }
  #elseif FUZZ_IMAGE
  if let header = try? ArmImageHeader(bytes: bytes, fileSize: UInt64(bytes.count)) {
    _ = header.loadAddress(atOrAbove: UInt64(bytes.count) << 20)
  }
  #elseif FUZZ_ZSTD
  // The firmware's zboot path: a bounded output buffer that is the whole window.
  let raw = UnsafeRawBufferPointer(start: data, count: size)
  _ = try? Zstd.frameContentSize(raw)
  if let written = try? Zstd.decompress(raw, into: zstdFuzzOutput), written > zstdFuzzOutput.count {
    fatalError("decompress reports more bytes than the output holds")
  }
  #endif
  return 0
}

#if FUZZ_ZSTD
/// 4 MiB, allocated once for every input.
let zstdFuzzOutput = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 16)
#endif
