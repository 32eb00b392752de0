import Crypto
public import FirmwareCore

// A launch log from a launch (the digests of its images), and its replay to a RIM: the parts of
// the launch log that hash (swift-crypto); the format itself is in RealmLaunchLog.swift, which the
// fuzz build compiles alone.
extension RealmLaunchLog {
  /// The log of `launch` under `rules`: its commands, in the order ``RealmLaunch/forEachOperation``
  /// hands them out, images named by `names` (one per region, in the launch's order).
  public init(
    launch: RealmLaunch, names: [String], rules: RIMRules, ripasOrder: RIPASOrder = .afterREC, deviceTree: [UInt8]? = nil
  ) throws(RIMError) {
    precondition(names.count == launch.regions.count, "one name per populated region")
    let ripas = launch.ripasEntries(rules: rules, ripasOrder: ripasOrder).map { Event.initRIPAS(base: $0.lowerBound, size: $0.upperBound - $0.lowerBound) }
    var events: [Event] = [.realmCreate(launch.parameters)]
    if ripasOrder == .beforeData { events += ripas }
    let algorithm = launch.parameters.hashAlgorithm
    for (region, name) in zip(launch.regions, names) {
      // The file's own digest (what sha256sum says, how a verifier finds the image) when the
      // region is its granules; else the bytes to the region's end, zeros included.
      let base = region.address + UInt64(region.contentOffset)
      let count = region.contents.withBytes { UInt64($0.count) }
      let end = (base + count + RealmLaunch.granule - 1) / RealmLaunch.granule * RealmLaunch.granule
      let size = end == region.address + UInt64(region.size) ? count : UInt64(region.size - region.contentOffset)
      let digest = region.contents.withBytes { bytes in Self.paddedDigest(bytes, to: size, algorithm) }
      events.append(.blob(Blob(name: name, base: base, size: size, digest: digest)))
    }
    if launch.bootCPU.runnable { events.append(.recCreate(launch.bootCPU)) }
    if ripasOrder == .afterREC { events += ripas }
    self.init(algorithm: algorithm, events: events, deviceTree: deviceTree)
  }

  /// The RIM the log's commands give, the measured images' bytes taken from `images` (and the
  /// log's own DTB): an image stands for a blob when its bytes, zero-padded to the blob's size,
  /// have the blob's digest.
  /// Every address and size is checked as the RMM would: granules inside the protected IPA half,
  /// one REALM_CREATE first, its algorithm the log's.
  public func replay(images: [any RegionContents]) throws(LaunchLogError) -> RealmInitialMeasurement {
    guard case .realmCreate(let parameters)? = events.first else { throw .invalid("the first command is not REALM_CREATE") }
    guard parameters.hashAlgorithm == algorithm else { throw .invalid("REALM_CREATE's hash algorithm is not the log's") }
    guard (32...52).contains(Int(parameters.ipaBits)) else { throw .invalid("IPA width \(parameters.ipaBits)") }
    let protectedTop: UInt64 = 1 << UInt64(parameters.ipaBits - 1)
    let granule = RealmLaunch.granule
    func inside(_ base: UInt64, _ size: UInt64) -> Bool { size > 0 && base < protectedTop && size <= protectedTop - base }
    let images = images + (deviceTree.map { [$0 as any RegionContents] } ?? [])
    var rim = RealmInitialMeasurement(parameters: parameters)
    for event in events.dropFirst() {
      switch event {
      case .realmCreate: throw .invalid("a second REALM_CREATE")
      case .initRIPAS(let base, let size):
        guard base % granule == 0, size % granule == 0, inside(base, size) else {
          throw .invalid("INIT_RIPAS 0x\(String(base, radix: 16))+0x\(String(size, radix: 16)) is not whole granules in the protected half")
        }
        rim.extendRIPAS(base: base, top: base + size)
      case .recCreate(let rec): rim.extendREC(rec)
      case .blob(let blob):
        guard inside(blob.base, blob.size), blob.size <= UInt64(Int.max / 2) else {
          throw .invalid("\(blob.name) at 0x\(String(blob.base, radix: 16))+0x\(String(blob.size, radix: 16)) is outside the protected half")
        }
        guard let image = images.first(where: { matches($0, blob) }) else {
          throw .imageNotFound(name: blob.name, digest: ByteString.hex(bytes: blob.digest))
        }
        let start = blob.base / granule * granule, end = (blob.base + blob.size + granule - 1) / granule * granule
        let region = RealmLaunch.Region(address: start, size: Int(end - start), contentOffset: Int(blob.base - start), contents: image)
        do throws(RIMError) {
          try region.forEachGranule { (ipa, contents) throws(RIMError) in try rim.extendData(ipa: ipa, contents: contents) }
        } catch {
          throw .invalid("\(blob.name): \(error)")  // aligned 4 KiB granules: not expected
        }
      }
    }
    return rim
  }

  /// Whether `image`, zero-padded to the blob's size, has its digest (hashed as it is read, the
  /// padding too: nothing is copied).
  func matches(_ image: any RegionContents, _ blob: Blob) -> Bool {
    image.withBytes { bytes in
      guard UInt64(bytes.count) <= blob.size else { return false }
      return Self.paddedDigest(bytes, to: blob.size, algorithm) == blob.digest
    }
  }

  /// The digest of `bytes` followed by zeros up to `size` bytes.
  static func paddedDigest(_ bytes: UnsafeRawBufferPointer, to size: UInt64, _ algorithm: RealmHashAlgorithm) -> [UInt8] {
    switch algorithm {
    case .sha256: return paddedDigest(bytes, to: size, Crypto.SHA256())
    case .sha512: return paddedDigest(bytes, to: size, Crypto.SHA512())
    }
  }

  static func paddedDigest<H: HashFunction>(_ bytes: UnsafeRawBufferPointer, to size: UInt64, _ hasher: H) -> [UInt8] {
    var hasher = hasher
    hasher.update(bufferPointer: bytes)
    let zeros = [UInt8](repeating: 0, count: 1 << 16)
    var left = Int(size) - bytes.count
    while left > 0 {
      zeros.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<min(left, zeros.count)])) }
      left -= zeros.count
    }
    return Array(hasher.finalize())
  }
}
