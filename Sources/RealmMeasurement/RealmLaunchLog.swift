public import FirmwareCore

/// A Realm's launch measurement log: every command the RMM measured into the RIM, in the order
/// the host issued them, as a TCG crypto-agile event log (TCG PC Client Platform Firmware Profile
/// §10.2) laid out as veraison/cca-realm-measurements `docs/measurement-log.md` describes, so that
/// a verifier holding the images can replay the RIM without realm-run.
///
/// Every event has PCR index 0 (the RIM). The log starts with the Spec ID event naming one
/// algorithm, the Realm's; then, one event per measured command:
/// - `EV_EVENT_TAG` 1 REALM_CREATE `{u64 flags, u8 s2sz, sve_vl, num_bps, num_wps, pmu_num_ctrs,
///   hash_algo}` (the fields `RMI_REALM_CREATE` measures, as `RmiRealmParams` holds them);
/// - `EV_EVENT_TAG` 2 INIT_RIPAS `{u64 base, u64 size}`, one per measured RTT entry (RMM 1.0);
/// - a populated image: `UEFI_PLATFORM_FIRMWARE_BLOB2 {u8 length, description, u64 base, u64
///   size}`, as `EV_EFI_PLATFORM_FIRMWARE_BLOB2` for "FIRMWARE" and `EV_POST_CODE2` for "KERNEL",
///   "INITRD" and "DTB", with the digest of its `size` bytes at `base`; the granules from `base`
///   rounded down to the end rounded up are created in order, zero around the bytes;
/// - `EV_EVENT_TAG` 3 REC_CREATE `{u64 flags, u64 pc, u64 gprs[8]}` for the runnable REC.
///
/// Before them, an `EV_NO_ACTION` event may carry the DTB's bytes (signature "DTB", the layout's
/// option for firmware tables), so that a verifier need not rebuild the DTB to find its image.
/// Tag and `EV_NO_ACTION` events carry one zero digest. The log is the host's word, not the RMM's: a verifier trusts
/// it only when its replay gives the RIM the token reports.
public struct RealmLaunchLog: Sendable, Equatable {
  /// One populated image.
  public struct Blob: Sendable, Equatable {
    /// "FIRMWARE", "KERNEL", "INITRD" or "DTB".
    public var name: String
    /// Guest address of the image's first byte.
    public var base: UInt64
    /// The image's size in bytes.
    public var size: UInt64
    /// The digest of those bytes with the log's algorithm.
    public var digest: [UInt8]

    public init(name: String, base: UInt64, size: UInt64, digest: [UInt8]) {
      self.name = name
      self.base = base
      self.size = size
      self.digest = digest
    }
  }

  /// One measured command.
  public enum Event: Sendable, Equatable {
    case realmCreate(RealmParameters)
    case initRIPAS(base: UInt64, size: UInt64)
    case blob(Blob)
    case recCreate(RECParameters)
  }

  public var algorithm: RealmHashAlgorithm
  public var events: [Event]
  /// The DTB the launch populated, as the VMM built it (without its slot's padding): one more
  /// image for ``replay(images:)``, which finds it by its digest like any other.
  public var deviceTree: [UInt8]?

  public init(algorithm: RealmHashAlgorithm, events: [Event], deviceTree: [UInt8]? = nil) {
    self.algorithm = algorithm
    self.events = events
    self.deviceTree = deviceTree
  }

  // TCG event types and identifiers.
  static let noAction: UInt32 = 3
  static let eventTag: UInt32 = 6
  static let postCode2: UInt32 = 0x13
  static let platformFirmwareBlob2: UInt32 = 0x8000_000A
  static let tagRealmCreate: UInt32 = 1, tagInitRIPAS: UInt32 = 2, tagRECCreate: UInt32 = 3
  static let specIDSignature = Array("Spec ID Event03".utf8) + [0]
  static let deviceTreeSignature = Array("DTB".utf8) + [UInt8](repeating: 0, count: 13)
  /// The largest DTB an `EV_NO_ACTION` event carries (the TCG profile's recommended event limit).
  public static let maximumDeviceTreeSize = 1 << 20
  /// The largest log `init(decoding:)` reads (the TCG profile recommends events of at most 1 MB).
  public static let maximumSize = 16 << 20
  /// The most events `init(decoding:)` accepts: a REALM_CREATE, one REC, images and RIPAS entries.
  public static let maximumEvents = 1 << 16

  /// TPM_ALG_ID of an algorithm (TCG Algorithm Registry).
  static func tcgAlgorithmID(_ algorithm: RealmHashAlgorithm) -> UInt16 { algorithm == .sha256 ? 0x000B : 0x000D }

  // MARK: Encoding

  /// The log's bytes.
  public func encoded() -> [UInt8] {
    var out = specIDEvent()
    if let deviceTree { out += event2(type: Self.noAction, digest: zeroDigest, data: Self.deviceTreeSignature + deviceTree) }
    for event in events {
      switch event {
      case .realmCreate(let p):
        let data = p.flags.littleEndianBytes + [p.ipaBits, p.sveVectorLength, p.breakpoints, p.watchpoints, p.pmuCounters, p.hashAlgorithm.rmiValue]
        out += event2(type: Self.eventTag, digest: zeroDigest, data: tagged(Self.tagRealmCreate, data))
      case .initRIPAS(let base, let size):
        out += event2(type: Self.eventTag, digest: zeroDigest, data: tagged(Self.tagInitRIPAS, base.littleEndianBytes + size.littleEndianBytes))
      case .blob(let blob):
        let description = Array(blob.name.utf8)
        let data = [UInt8(description.count)] + description + blob.base.littleEndianBytes + blob.size.littleEndianBytes
        out += event2(type: blob.name == "FIRMWARE" ? Self.platformFirmwareBlob2 : Self.postCode2, digest: blob.digest, data: data)
      case .recCreate(let rec):
        let data = UInt64(rec.runnable ? 1 : 0).littleEndianBytes + rec.pc.littleEndianBytes + rec.gprs.flatMap { $0.littleEndianBytes }
        out += event2(type: Self.eventTag, digest: zeroDigest, data: tagged(Self.tagRECCreate, data))
      }
    }
    return out
  }

  private var zeroDigest: [UInt8] { [UInt8](repeating: 0, count: algorithm.digestSize) }

  /// TCG_PCClientPCREvent (SHA-1 format) holding TCG_EfiSpecIdEvent: platform class 0, family
  /// 2.0, revision 106, uintn size 2, one algorithm, no vendor information.
  private func specIDEvent() -> [UInt8] {
    var data = Self.specIDSignature + UInt32(0).littleEndianBytes + [0, 2, 106, 2] + UInt32(1).littleEndianBytes
    data += Self.tcgAlgorithmID(algorithm).littleEndianBytes + UInt16(algorithm.digestSize).littleEndianBytes + [0]
    return UInt32(0).littleEndianBytes + Self.noAction.littleEndianBytes + [UInt8](repeating: 0, count: 20)
      + UInt32(data.count).littleEndianBytes + data
  }

  /// TCG_PCR_EVENT2 with PCR index 0 and one digest of the log's algorithm.
  private func event2(type: UInt32, digest: [UInt8], data: [UInt8]) -> [UInt8] {
    UInt32(0).littleEndianBytes + type.littleEndianBytes + UInt32(1).littleEndianBytes
      + Self.tcgAlgorithmID(algorithm).littleEndianBytes + digest + UInt32(data.count).littleEndianBytes + data
  }

  /// TCG_PCClientTaggedEvent: `{u32 id, u32 size, data}`.
  private func tagged(_ id: UInt32, _ data: [UInt8]) -> [UInt8] {
    id.littleEndianBytes + UInt32(data.count).littleEndianBytes + data
  }
}

/// Why a launch log cannot be read or replayed.
public enum LaunchLogError: Error, Equatable, Sendable, CustomStringConvertible {
  /// The bytes are not a log this reader accepts: where and why.
  case malformed(offset: Int, String)
  /// No image given has the bytes of a measured image the log names.
  case imageNotFound(name: String, digest: String)
  /// The events break the rules of a Realm's construction.
  case invalid(String)

  public var description: String {
    switch self {
    case .malformed(let offset, let what): return "launch log at byte \(offset): \(what)"
    case .imageNotFound(let name, let digest): return "launch log: no image given has the digest of \(name) (\(digest))"
    case .invalid(let what): return "launch log: \(what)"
    }
  }
}

extension RealmLaunchLog {
  /// Reads a log (the host's, so untrusted): every size is checked against what is left, every
  /// field against what a Realm can have; at most ``maximumSize`` bytes and ``maximumEvents``
  /// events. Zero or 0xFF bytes after the last event (a log in a fixed-size area) end it; reading
  /// is linear in the log's size.
  public init(decoding bytes: [UInt8]) throws(LaunchLogError) {
    guard bytes.count <= Self.maximumSize else { throw .malformed(offset: 0, "larger than \(Self.maximumSize) bytes") }
    var reader = LogReader(bytes: bytes)
    // The Spec ID event, in the SHA-1 format.
    guard try reader.u32("PCR index") == 0, try reader.u32("event type") == Self.noAction else {
      throw .malformed(offset: 0, "does not start with a Spec ID event (EV_NO_ACTION, PCR 0)")
    }
    _ = try reader.bytes(20, "SHA-1 digest")
    let specSize = Int(try reader.u32("Spec ID event size"))
    let specStart = reader.offset
    var spec = LogReader(bytes: try reader.bytes(specSize, "Spec ID event"), base: specStart)
    guard try spec.bytes(16, "signature") == Self.specIDSignature else { throw .malformed(offset: specStart, "not \"Spec ID Event03\"") }
    _ = try spec.bytes(8, "platform class and versions")
    guard try spec.u32("algorithm count") == 1 else { throw .malformed(offset: specStart + 24, "not exactly one algorithm") }
    let algorithmID = try spec.u16("algorithm"), digestSize = try spec.u16("digest size")
    guard let algorithm = RealmHashAlgorithm.allCases.first(where: { Self.tcgAlgorithmID($0) == algorithmID }),
      Int(digestSize) == algorithm.digestSize
    else { throw .malformed(offset: specStart + 28, "algorithm 0x\(String(algorithmID, radix: 16)) is neither SHA-256 nor SHA-512") }
    var events: [Event] = []
    var deviceTree: [UInt8]? = nil
    while reader.remaining > 0 {
      // An event of type 0 (EV_PREBOOT_CERT, which no VMM writes) or PCR 0xFFFFFFFF: the fill of
      // a fixed-size area begins, zeros or 0xFF to the end.
      if reader.remaining < 8 || reader.peekU32(at: 0) == 0xFFFF_FFFF || reader.peekU32(at: 4) == 0 {
        guard reader.restIsFill else { throw .malformed(offset: reader.offset, "bytes after the last event that are not fill") }
        break
      }
      guard events.count < Self.maximumEvents else { throw .malformed(offset: reader.offset, "more than \(Self.maximumEvents) events") }
      let start = reader.offset
      guard try reader.u32("PCR index") == 0 else { throw .malformed(offset: start, "an event for a PCR other than 0 (the RIM)") }
      let type = try reader.u32("event type")
      let count = try reader.u32("digest count")
      guard count <= 1 else { throw .malformed(offset: start + 8, "\(count) digests (one algorithm)") }
      var digest: [UInt8]? = nil
      if count == 1 {
        guard try reader.u16("digest algorithm") == algorithmID else { throw .malformed(offset: start + 12, "a digest of another algorithm") }
        digest = try reader.bytes(algorithm.digestSize, "digest")
      }
      let size = Int(try reader.u32("event size"))
      let dataStart = reader.offset
      var data = LogReader(bytes: try reader.bytes(size, "event data"), base: dataStart)
      switch type {
      case Self.noAction:  // information, nothing measured: the DTB's bytes, or another VMM's VM VERSION
        guard data.remaining >= 16, try data.bytes(16, "signature") == Self.deviceTreeSignature else { continue }
        guard deviceTree == nil, data.remaining <= Self.maximumDeviceTreeSize else {
          throw .malformed(offset: dataStart, "a second DTB, or one over \(Self.maximumDeviceTreeSize) bytes")
        }
        deviceTree = try data.bytes(data.remaining, "DTB")
      case Self.eventTag: events.append(try Self.tagEvent(&data))
      case Self.postCode2, Self.platformFirmwareBlob2:
        let length = Int(try data.u8("description length"))
        let name = String(decoding: try data.bytes(length, "description"), as: UTF8.self)
        guard ["FIRMWARE", "KERNEL", "INITRD", "DTB"].contains(name) else { throw .malformed(offset: dataStart, "image \"\(name)\"") }
        guard let digest else { throw .malformed(offset: start, "image \(name) without a digest") }
        let blob = Blob(name: name, base: try data.u64("base"), size: try data.u64("size"), digest: digest)
        try data.end()
        events.append(.blob(blob))
      default: throw .malformed(offset: start + 4, "event type 0x\(String(type, radix: 16))")
      }
    }
    self.init(algorithm: algorithm, events: events, deviceTree: deviceTree)
  }

  private static func tagEvent(_ data: inout LogReader) throws(LaunchLogError) -> Event {
    let start = data.offset
    let id = try data.u32("tag"), size = Int(try data.u32("tag size"))
    guard size == data.remaining else { throw .malformed(offset: start + 4, "tag size \(size), \(data.remaining) bytes follow") }
    let event: Event
    switch id {
    case tagRealmCreate:
      let flags = try data.u64("flags")
      let f = try data.bytes(6, "realm parameters")
      guard flags & ~7 == 0, let algorithm = RealmHashAlgorithm(rmiValue: UInt64(f[5])) else {
        throw .malformed(offset: start + 8, "REALM_CREATE flags 0x\(String(flags, radix: 16)) or hash_algo \(f[5])")
      }
      event = .realmCreate(RealmParameters(
        ipaBits: f[0], hashAlgorithm: algorithm, lpa2: flags & 1 != 0, breakpoints: f[2], watchpoints: f[3],
        sve: flags & 2 != 0, sveVectorLength: f[1], pmu: flags & 4 != 0, pmuCounters: f[4]))
    case tagInitRIPAS:
      event = .initRIPAS(base: try data.u64("base"), size: try data.u64("size"))
    case tagRECCreate:
      let flags = try data.u64("flags"), pc = try data.u64("pc")
      var gprs: [UInt64] = []
      for _ in 0..<8 { gprs.append(try data.u64("gpr")) }
      guard flags == 1 else { throw .malformed(offset: start + 8, "REC_CREATE flags \(flags) (only a runnable REC is measured)") }
      do { event = .recCreate(try RECParameters(runnable: true, pc: pc, gprs: gprs)) } catch { throw .malformed(offset: start, "\(error)") }
    default: throw .malformed(offset: start, "tag \(id)")
    }
    try data.end()
    return event
  }
}

/// Little-endian fields read from a byte array, each checked against what is left.
struct LogReader {
  let bytes: [UInt8]
  /// Where `bytes` starts in the whole log (for messages).
  let base: Int
  private(set) var position = 0

  init(bytes: [UInt8], base: Int = 0) {
    self.bytes = bytes
    self.base = base
  }

  var offset: Int { base + position }
  var remaining: Int { bytes.count - position }
  /// The little-endian u32 `offset` bytes ahead, without moving (nil past the end).
  func peekU32(at offset: Int) -> UInt32? { bytes.le32(at: position + offset) }

  /// Nothing left but zero or 0xFF fill.
  var restIsFill: Bool { bytes[position...].allSatisfy { $0 == 0 } || bytes[position...].allSatisfy { $0 == 0xFF } }

  mutating func bytes(_ count: Int, _ what: String) throws(LaunchLogError) -> [UInt8] {
    guard count >= 0, count <= remaining else { throw .malformed(offset: offset, "\(what): \(count) bytes, \(remaining) left") }
    defer { position += count }
    return Array(bytes[position..<position + count])
  }

  mutating func u8(_ what: String) throws(LaunchLogError) -> UInt8 { try bytes(1, what)[0] }
  mutating func u16(_ what: String) throws(LaunchLogError) -> UInt16 { try bytes(2, what).le16(at: 0)! }
  mutating func u32(_ what: String) throws(LaunchLogError) -> UInt32 { try bytes(4, what).le32(at: 0)! }
  mutating func u64(_ what: String) throws(LaunchLogError) -> UInt64 { try bytes(8, what).le64(at: 0)! }

  /// Throws if bytes are left over.
  func end() throws(LaunchLogError) {
    guard remaining == 0 else { throw .malformed(offset: offset, "\(remaining) unexpected bytes at the end of an event") }
  }
}
