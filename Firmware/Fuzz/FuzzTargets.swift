// libFuzzer entry points for every FirmwareCore parser that sees untrusted input.
// Scripts/fuzz-firmware compiles this file with the FirmwareCore sources once, and runs the binary
// once per target, named by FUZZ_TARGET: fdt, gpt, fat (with the boot manager's ESP offer and BLS
// entry choice), bls, image, pe (PE32+ parse on array and
// raw-buffer storage, and load), devicepath (EFI device paths), zstd, inflate (raw DEFLATE, gzip,
// kernel format detection), runtimemap (SetVirtualAddressMap's memory map). Any trap is a bug.

// getenv without importing the C library (FirmwareCore's sources import nothing).
@_silgen_name("getenv") func getenv(_ name: UnsafePointer<CChar>) -> UnsafeMutablePointer<CChar>?

/// The target this run fuzzes.
let fuzzTarget: String = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? ""

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  switch fuzzTarget {
  case "fdt":
  if var tree = try? DeviceTree(blob: bytes) {
    _ = try? PlatformDescription(tree: tree)
    let chosen = tree.chosenNode()
    tree.setStringProperty(chosen, "bootargs", Array("console=ttyAMA0".utf8))
    tree.setU64Property(chosen, "linux,initrd-start", 0x4800_0000)
    let again = tree.serialized()
    guard (try? DeviceTree(blob: again)) != nil else { fatalError("serialized tree does not parse") }
  }
  case "gpt":
  var padded = bytes
  while padded.count % 512 != 0 { padded.append(0) }
  var device = MemoryBlockDevice(bytes: padded)
  if let gpt = try? GUIDPartitionTable(device: &device) { _ = try? gpt.efiSystemPartition() }
  case "fat":
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
    // the boot manager's view of an ESP (what realm-run's measure also takes on the host)
    let offer = ESPOffer(volume: &fat)
    for mode in FirmwareBootMode.allCases { _ = offer.path(mode: mode) }
    _ = try? ESPOffer.chooseEntry(&fat, requested: nil) { _ in }
    _ = try? ESPOffer.chooseEntry(&fat, requested: Array("a".utf8)) { _ in }
  }
  case "bls":
  if let entry = try? BootEntry(id: Array("fuzz".utf8), text: bytes) {
    let config = (try? LoaderConfiguration(text: bytes)) ?? LoaderConfiguration()
    _ = try? BootEntrySelection.choose([entry], configuration: config, requested: entry.title)
  }
  case "image":
  if let header = try? ArmImageHeader(bytes: bytes, fileSize: UInt64(bytes.count)) {
    _ = header.loadAddress(atOrAbove: UInt64(bytes.count) << 20)
  }
  case "pe":
  let raw = try? PEImage(bytes: UnsafeRawBufferPointer(start: data, count: size))
  if let image = try? PEImage(bytes: bytes) {
    guard let raw, raw.sections == image.sections, raw.sizeOfImage == image.sizeOfImage
    else { fatalError("the raw-buffer parse disagrees with the array parse") }
    _ = image.section(named: Array("mods".utf8))
    // Load (into a bounded buffer) at ImageBase and at another aligned address: relocations run.
    if image.sizeOfImage <= 8 << 20 {
      let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(image.sizeOfImage), alignment: 16)
      defer { memory.deallocate() }
      if (try? image.load(into: memory, at: image.imageBase)) != nil {
        for i in 0..<Int(image.sizeOfHeaders) where memory[i] != bytes[i] { fatalError("headers not copied") }
      }
      _ = try? image.load(into: memory, at: 0x8000_0000)
    }
  } else if raw != nil {
    fatalError("the raw-buffer parse accepts what the array parse rejects")
  }
  case "devicepath":
  if let path = try? EFIDevicePath(parsing: bytes) {
    let nodes = path.nodes
    let rebuilt = EFIDevicePath(nodes: nodes)
    // A FilePath padded after its NUL rebuilds shorter; the nodes must survive the trip.
    guard let again = try? EFIDevicePath(parsing: rebuilt.bytes), again.nodes == nodes
    else { fatalError("rebuilt device path does not parse back to its nodes") }
    guard EFIDevicePath().isPrefix(of: path), path.isPrefix(of: path) else { fatalError("prefix") }
    if let fat = path.fatPath { _ = EFIDevicePathNode.filePath(fatPath: fat).fatPath }
    if let first = nodes.first { _ = EFIDevicePath(nodes: [first]).isPrefix(of: rebuilt) }
  }
  case "zstd":
  // The firmware's zboot path: a bounded output buffer that is the whole window.
  let raw = UnsafeRawBufferPointer(start: data, count: size)
  _ = try? Zstd.frameContentSize(raw)
  if let written = try? Zstd.decompress(raw, into: zstdFuzzOutput), written > zstdFuzzOutput.count {
    fatalError("decompress reports more bytes than the output holds")
  }
  case "inflate":
  fuzzInflate(bytes)
  case "runtimemap":
  // SetVirtualAddressMap's map: the descriptor size (in 8-byte units) and version in the first
  // two bytes, the descriptors after them; read as an array and in place.
  guard bytes.count >= 2 else { break }
  let size = Int(bytes[0]) * 8, version = UInt32(bytes[1] & 3)
  let descriptors = Array(bytes.dropFirst(2))
  let parsed = try? RuntimeAddressMap(descriptors, descriptorSize: size, version: version)
  let inPlace = descriptors.withUnsafeBytes { (try? RuntimeAddressMap($0, descriptorSize: size, version: version))?.count }
  guard (parsed?.count) == inPlace else { fatalError("the raw-buffer parse disagrees with the array parse") }
  if let map = parsed {
    for i in 0..<min(map.count, 64) {  // (each check walks the map: keep an input fast)
      guard let r = map.region(i), r.size > 0 else { continue }
      // Converts into some runtime region's virtual range (the first that holds it).
      guard map.convert(r.physicalStart + r.size - 1) != nil else { fatalError("a runtime region's address does not convert") }
      if let s = map.shift(covering: r.physicalStart, end: r.physicalStart + r.size),
         map.convert(r.physicalStart) != r.physicalStart &+ s { fatalError("the covering shift disagrees with convert") }
    }
    _ = map.shift(covering: 0x4008_0000, end: 0x4010_0000)
  }
  default:
    fatalError("FUZZ_TARGET names no target: '\(fuzzTarget)'")
  }
  return 0
}

/// 4 MiB, allocated once for every input.
let zstdFuzzOutput = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 16)

/// The input as a raw DEFLATE stream, a gzip member (into a 1 MiB and a small output) and a kernel
/// file (format detection, a zboot payload unpacked): every result must stay inside its buffers.
func fuzzInflate(_ bytes: [UInt8]) {
  bytes.withUnsafeBytes { input in
    let output = inflateOutput
    if let (consumed, produced) = try? Inflate.decompress(input, into: output) {
      guard consumed <= input.count, produced <= output.count else { fatalError("inflate result out of bounds") }
    }
    if let produced = try? Gzip.decompress(input, into: output), produced > output.count { fatalError("gzip out of bounds") }
    let small = UnsafeMutableRawBufferPointer(rebasing: output[..<Swift.min(output.count, 2 * input.count)])
    _ = try? Gzip.decompress(input, into: small)
    if let n = try? Gzip.decompressPrefix(input, into: UnsafeMutableRawBufferPointer(rebasing: output[..<64])), n > 64 {
      fatalError("prefix out of bounds")
    }
    _ = Gzip.uncompressedSizeHint(input)
    if case .zbootGzip(let offset, let size)? = try? KernelFormat.detect(input, fileSize: UInt64(input.count)) {
      guard offset >= 0, size >= 0, offset + size <= input.count else { fatalError("zboot payload out of bounds") }
      _ = try? Gzip.decompress(UnsafeRawBufferPointer(rebasing: input[offset..<offset + size]), into: output)
    }
  }
}

/// One output buffer for every run (the output itself is the DEFLATE window).
let inflateOutput = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
