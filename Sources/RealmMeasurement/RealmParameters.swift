public import FirmwareCore

/// The hash algorithm a Realm measures itself with is FirmwareCore's ``RealmHashAlgorithm`` (the
/// firmware reads it from RSI too); in the Codable form of the parameters it is its raw value.
extension RealmHashAlgorithm: Codable {}

/// The measured part of `RmiRealmParams` (DEN0137 B4.4.12): what `RMI_REALM_CREATE` hashes into
/// the initial RIM.
///
/// DEN0137 B4.3.9.4 (RMI_REALM_CREATE extension): the RIM starts as the hash of a 4096-byte
/// `RmiRealmParams` image in which only `flags`, `s2sz`, `sve_vl`, `num_bps`, `num_wps`,
/// `pmu_num_ctrs` and `hash_algo` are copied from the host's structure; every other byte, the RPV
/// at 0x400 included, is zero. So the Realm Personalization Value never changes the RIM.
public struct RealmParameters: Sendable, Equatable, Codable {
  /// `flags` bit 0: the Realm uses LPA2 (52-bit IPAs with 4 KiB granules). Linux's CCA host sets
  /// it whenever the host kernel itself runs with LPA2 (`kvm_lpa2_is_enabled()`).
  public var lpa2: Bool
  /// `flags` bit 1: SVE enabled, with ``sveVectorLength`` (a VQ − 1 encoding) in `sve_vl`.
  public var sve: Bool
  /// `flags` bit 2: PMU enabled, with ``pmuCounters`` in `pmu_num_ctrs`.
  public var pmu: Bool
  /// `s2sz`: the IPA width in bits (protected half plus the shared alias bit).
  public var ipaBits: UInt8
  /// `sve_vl`: copied as given (TF-RMM checks it only when SVE is on); 0 when SVE is off.
  public var sveVectorLength: UInt8
  /// `num_bps`: Linux copies the raw `ID_AA64DFR0_EL1.BRPs` field [15:12] of the VM (one less
  /// than the number of breakpoints).
  public var breakpoints: UInt8
  /// `num_wps`: the raw `ID_AA64DFR0_EL1.WRPs` field [23:20] of the VM.
  public var watchpoints: UInt8
  /// `pmu_num_ctrs`: copied as given; 0 when the PMU is off.
  public var pmuCounters: UInt8
  /// `hash_algo`.
  public var hashAlgorithm: RealmHashAlgorithm

  public init(
    ipaBits: UInt8, hashAlgorithm: RealmHashAlgorithm = .sha256, lpa2: Bool = false, breakpoints: UInt8 = 0,
    watchpoints: UInt8 = 0, sve: Bool = false, sveVectorLength: UInt8 = 0, pmu: Bool = false, pmuCounters: UInt8 = 0
  ) {
    self.ipaBits = ipaBits
    self.hashAlgorithm = hashAlgorithm
    self.lpa2 = lpa2
    self.breakpoints = breakpoints
    self.watchpoints = watchpoints
    self.sve = sve
    self.sveVectorLength = sveVectorLength
    self.pmu = pmu
    self.pmuCounters = pmuCounters
  }

  /// The measured fields of a host's 4096-byte `RmiRealmParams` structure (DEN0137 B4.4.12), as
  /// `RMI_REALM_CREATE` copies them (B4.3.9.4); the RPV at 0x400 and the RTT and VMID fields
  /// from 0x800 on are ignored, as the RMM ignores them when it measures.
  public init(rmiRealmParams image: [UInt8]) throws(RIMError) {
    guard image.count == 4096 else { throw .badRealmParams("\(image.count) bytes, not 4096") }
    func word(_ offset: Int) -> UInt64 { image.le64(at: offset)! }  // offsets < 4088, count checked
    func byte(_ offset: Int, _ name: String) throws(RIMError) -> UInt8 {
      guard let value = UInt8(exactly: word(offset)) else { throw .badRealmParams("\(name) 0x\(String(word(offset), radix: 16))") }
      return value
    }
    let flags = word(0x00)
    guard flags & ~7 == 0 else { throw .badRealmParams("flags 0x\(String(flags, radix: 16))") }
    guard let algorithm = RealmHashAlgorithm(rmiValue: word(0x30)) else { throw .badRealmParams("hash_algo \(word(0x30))") }
    self.init(
      ipaBits: try byte(0x08, "s2sz"), hashAlgorithm: algorithm, lpa2: flags & 1 != 0,
      breakpoints: try byte(0x18, "num_bps"), watchpoints: try byte(0x20, "num_wps"), sve: flags & 2 != 0,
      sveVectorLength: try byte(0x10, "sve_vl"), pmu: flags & 4 != 0, pmuCounters: try byte(0x28, "pmu_num_ctrs"))
  }

  /// `RmiRealmParams.flags`.
  public var flags: UInt64 { (lpa2 ? 1 : 0) | (sve ? 2 : 0) | (pmu ? 4 : 0) }

  /// The 4096-byte image the RMM hashes (DEN0137 B4.3.9.4): the measured fields at their
  /// B4.4.12 offsets, each a little-endian 64-bit word, and zero everywhere else.
  public var measuredImage: [UInt8] {
    var image = [UInt8](repeating: 0, count: 4096)
    image.storeLE(flags, at: 0x00, width: 8)
    image.storeLE(UInt64(ipaBits), at: 0x08, width: 8)
    image.storeLE(UInt64(sveVectorLength), at: 0x10, width: 8)
    image.storeLE(UInt64(breakpoints), at: 0x18, width: 8)
    image.storeLE(UInt64(watchpoints), at: 0x20, width: 8)
    image.storeLE(UInt64(pmuCounters), at: 0x28, width: 8)
    image.storeLE(UInt64(hashAlgorithm.rmiValue), at: 0x30, width: 8)
    return image
  }
}

/// The measured part of `RmiRecParams` (DEN0137 B4.4.19) for `RMI_REC_CREATE`.
///
/// DEN0137 B4.3.12.4: only a runnable REC extends the RIM, with the hash of a 4096-byte
/// `RmiRecParams` image that holds `flags` @0x000, `pc` @0x200 and `gprs[0..7]` @0x300; MPIDR and
/// the auxiliary granules are not copied.
public struct RECParameters: Sendable, Equatable, Codable {
  /// `flags` bit 0 (`RMI_RUNNABLE`). Linux makes only vCPU 0 runnable.
  public var runnable: Bool
  /// The entry point.
  public var pc: UInt64
  /// X0..X7 at entry.
  public var gprs: [UInt64]

  /// - Parameter gprs: up to 8 values for X0..X7; missing ones are zero.
  public init(runnable: Bool = true, pc: UInt64, gprs: [UInt64] = []) throws(RIMError) {
    guard gprs.count <= 8 else { throw .tooManyRegisters(gprs.count) }
    self.runnable = runnable
    self.pc = pc
    self.gprs = gprs + [UInt64](repeating: 0, count: 8 - gprs.count)
  }

  /// The 4096-byte image whose hash goes into the REC descriptor.
  public var measuredImage: [UInt8] {
    var image = [UInt8](repeating: 0, count: 4096)
    image.storeLE(runnable ? 1 : 0, at: 0x000, width: 8)
    image.storeLE(pc, at: 0x200, width: 8)
    for (index, value) in gprs.enumerated() {
      image.storeLE(value, at: 0x300 + 8 * index, width: 8)
    }
    return image
  }
}

/// Why a measurement could not be computed.
public enum RIMError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A REC takes X0..X7 only.
  case tooManyRegisters(Int)
  /// Populated data must start on a 4 KiB granule and be whole granules.
  case unalignedData(address: UInt64, size: Int)
  /// A region's contents do not fit inside it.
  case contentsOutsideRegion(address: UInt64, size: Int)
  /// Two populated regions overlap, or are not in ascending order.
  case overlappingData(address: UInt64)
  /// Populated data outside the Realm's RAM.
  case dataOutsideRAM(address: UInt64)
  /// RAM must be whole granules inside the protected IPA half.
  case badRAM(base: UInt64, size: UInt64)
  /// The IPA width is outside what the RMM accepts (32...52).
  case badIPAWidth(Int)
  /// A host `RmiRealmParams` image that is not 4096 bytes or holds a value this model does not.
  case badRealmParams(String)

  public var description: String {
    switch self {
    case .tooManyRegisters(let count): return "a REC takes at most 8 registers (x0-x7), not \(count)"
    case .unalignedData(let address, let size):
      return "populated data at 0x\(String(address, radix: 16)) (\(size) bytes) is not whole 4 KiB granules"
    case .contentsOutsideRegion(let address, let size):
      return "populated data at 0x\(String(address, radix: 16)) does not fit its \(size)-byte region"
    case .overlappingData(let address): return "populated data at 0x\(String(address, radix: 16)) overlaps or is out of order"
    case .dataOutsideRAM(let address): return "populated data at 0x\(String(address, radix: 16)) is outside the Realm's RAM"
    case .badRAM(let base, let size): return "RAM 0x\(String(base, radix: 16))+0x\(String(size, radix: 16)) is not whole granules in the protected IPA half"
    case .badIPAWidth(let bits): return "IPA width \(bits) is not one an RMM accepts (32-52)"
    case .badRealmParams(let what): return "RmiRealmParams: \(what)"
    }
  }
}
