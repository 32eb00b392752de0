/// Something that performs SMCCC calls: the real SMC instruction in the firmware, a fake Realm
/// Management Monitor in host tests.
public protocol SMCConduit {
  /// Calls `function` with arguments x1... and returns x0...x8 (at least nine values).
  mutating func call(_ function: UInt32, _ arguments: [UInt64]) -> [UInt64]
}

/// RSI function identifiers (RMM specification 1.0, SMC64 fast calls).
public enum RSIFunction {
  public static let version: UInt32 = 0xC400_0190
  public static let measurementRead: UInt32 = 0xC400_0192
  public static let measurementExtend: UInt32 = 0xC400_0193
  public static let realmConfig: UInt32 = 0xC400_0196
  public static let ipaStateSet: UInt32 = 0xC400_0197
  public static let ipaStateGet: UInt32 = 0xC400_0198
}

/// RSI return codes, Realm IPA states and flags.
public enum RSIConstant {
  public static let success: UInt64 = 0
  public static let errorInput: UInt64 = 1
  public static let errorState: UInt64 = 2
  public static let incomplete: UInt64 = 3
  public static let ripasEmpty: UInt64 = 0
  public static let ripasRAM: UInt64 = 1
  public static let noChangeDestroyed: UInt64 = 0
  public static let responseReject: UInt64 = 1
  /// RSI ABI 1.0, encoded (major << 16) | minor.
  public static let version1_0: UInt64 = 0x10000
  /// `RsiRealmConfig.hash_algo`: the algorithm of the RIM and the REMs (``RealmHashAlgorithm/rmiValue``).
  public static var hashSHA256: UInt64 { UInt64(RealmHashAlgorithm.sha256.rmiValue) }
  public static var hashSHA512: UInt64 { UInt64(RealmHashAlgorithm.sha512.rmiValue) }
}

/// Why an RSI call failed.
public enum RSIError: Error, Equatable {
  /// RSI_VERSION refused 1.0 and the monitor does not implement any 1.x revision.
  case unsupportedVersion(lower: UInt64, higher: UInt64)
  /// A call returned a non-success status.
  case status(function: UInt32, code: UInt64)
  /// The host rejected a RIPAS change at `base`.
  case rejected(base: UInt64)
  /// RSI_IPA_STATE_SET returned a base outside (base, top].
  case badProgress(base: UInt64, newBase: UInt64)
  /// RSI_IPA_STATE_SET made no progress repeatedly.
  case noProgress(base: UInt64)
  /// RSI_REALM_CONFIG reported an impossible IPA width.
  case badIPAWidth(UInt64)
  /// A memory range is not 4 KiB aligned or wraps.
  case misalignedRange(base: UInt64, top: UInt64)
  /// RSI_MEASUREMENT_EXTEND of an index outside 1...4 (REM0...REM3) or of more than 64 bytes.
  case badMeasurement(index: UInt64, size: Int)
}

/// Encoding, decoding and checking of the RSI calls the firmware makes.
public struct RealmServiceInterface<Conduit: SMCConduit> {
  public var conduit: Conduit
  public init(conduit: Conduit) { self.conduit = conduit }

  mutating func invoke(_ function: UInt32, _ args: [UInt64]) -> [UInt64] {
    var r = conduit.call(function, args)
    while r.count < 9 { r.append(0) }
    return r
  }

  /// RSI_VERSION asking for 1.0; accepts any 1.x monitor. Returns (lower, higher) revisions.
  public mutating func version() throws(RSIError) -> (lower: UInt64, higher: UInt64) {
    let r = invoke(RSIFunction.version, [RSIConstant.version1_0])
    let lower = r[1], higher = r[2]
    if r[0] == RSIConstant.success { return (lower, higher) }
    if lower >> 16 == 1 || higher >> 16 == 1 { return (lower, higher) }
    throw .unsupportedVersion(lower: lower, higher: higher)
  }

  /// RSI_REALM_CONFIG into the 4 KiB-aligned `buffer` whose IPA is `bufferIPA`; returns the IPA width.
  public mutating func realmConfig(buffer: UnsafeMutableRawPointer, bufferIPA: UInt64) throws(RSIError) -> UInt64 {
    guard bufferIPA & 0xFFF == 0 else { throw .misalignedRange(base: bufferIPA, top: bufferIPA) }
    let r = invoke(RSIFunction.realmConfig, [bufferIPA])
    guard r[0] == RSIConstant.success else { throw .status(function: RSIFunction.realmConfig, code: r[0]) }
    let width = buffer.load(as: UInt64.self)
    guard width >= 24, width <= 52 else { throw .badIPAWidth(width) }
    return width
  }

  /// RSI_IPA_STATE_SET over [base, top), looping on partial progress.
  public mutating func setRIPAS(base: UInt64, top: UInt64, state: UInt64, flags: UInt64 = RSIConstant.noChangeDestroyed)
    throws(RSIError)
  {
    guard base & 0xFFF == 0, top & 0xFFF == 0, base <= top else { throw .misalignedRange(base: base, top: top) }
    var current = base
    var stalls = 0
    while current < top {
      let r = invoke(RSIFunction.ipaStateSet, [current, top, state, flags])
      guard r[0] == RSIConstant.success else { throw .status(function: RSIFunction.ipaStateSet, code: r[0]) }
      if r[2] == RSIConstant.responseReject { throw .rejected(base: current) }
      let newBase = r[1]
      if newBase == current {
        stalls += 1
        if stalls >= 64 { throw .noProgress(base: current) }
        continue
      }
      guard newBase > current, newBase <= top, newBase & 0xFFF == 0 else {
        throw .badProgress(base: current, newBase: newBase)
      }
      stalls = 0
      current = newBase
    }
  }

  /// RSI_MEASUREMENT_READ: the 64-byte measurement `index` (0 = RIM) from x1...x8, little-endian.
  public mutating func measurement(index: UInt64) throws(RSIError) -> [UInt8] {
    let r = invoke(RSIFunction.measurementRead, [index])
    guard r[0] == RSIConstant.success else { throw .status(function: RSIFunction.measurementRead, code: r[0]) }
    var bytes: [UInt8] = []
    for i in 1...8 { bytes.appendLE(r[i], width: 8) }
    return bytes
  }

  /// RSI_MEASUREMENT_EXTEND: x1 = `index` (1...4 = REM0...REM3), x2 = the size of `value`
  /// (at most 64 bytes), x3...x10 = `value` little-endian, zero-padded. The RMM then sets the
  /// REM to Hash(REM || value) with the Realm's hash algorithm.
  public mutating func extendMeasurement(index: UInt64, value: [UInt8]) throws(RSIError) {
    guard index >= 1, index <= 4, value.count <= 64 else { throw .badMeasurement(index: index, size: value.count) }
    var args: [UInt64] = [index, UInt64(value.count)]
    let padded = value + [UInt8](repeating: 0, count: 64 - value.count)
    for word in 0..<8 { args.append(padded.le64(at: word * 8)!) }
    let r = invoke(RSIFunction.measurementExtend, args)
    guard r[0] == RSIConstant.success else { throw .status(function: RSIFunction.measurementExtend, code: r[0]) }
  }
}

/// What the firmware learned and did when it found itself in a Realm.
public struct RealmEnvironment: Equatable {
  public var versionLower: UInt64
  public var versionHigher: UInt64
  public var ipaWidth: UInt64
  /// `RsiRealmConfig.hash_algo` (``RSIConstant/hashSHA256`` or ``RSIConstant/hashSHA512``).
  public var hashAlgorithm: UInt64
  /// The bit that selects the unprotected (shared) IPA alias.
  public var sharedBit: UInt64 { 1 << (ipaWidth - 1) }
  /// The Realm Initial Measurement (64 bytes; unused trailing bytes are zero for SHA-256).
  public var rim: [UInt8]
}

/// The Realm bring-up sequence, independent of hardware.
public enum RealmBootstrap {
  /// A Realm is assumed only with the SMC conduit and FEAT_RME (ID_AA64PFR0_EL1 bits 55:52).
  public static func shouldProbe(conduit: SMCConduitKind?, idAA64PFR0: UInt64) -> Bool {
    conduit == .smc && (idAA64PFR0 >> 52) & 0xF != 0
  }

  /// RSI_VERSION, RSI_REALM_CONFIG (then `configured(ipaWidth)`, e.g. to start the console at
  /// its shared alias), RIPAS RAM for all `memory`, RIPAS EMPTY for `dmaPool`, then
  /// RSI_MEASUREMENT_READ(0).
  public static func run<C: SMCConduit>(
    rsi: inout RealmServiceInterface<C>, memory: [MemoryRange], configBuffer: UnsafeMutableRawPointer,
    configBufferIPA: UInt64, dmaPool: MemoryRange, configured: (UInt64) -> Void = { _ in }
  ) throws(RSIError) -> RealmEnvironment {
    let v = try rsi.version()
    let width = try rsi.realmConfig(buffer: configBuffer, bufferIPA: configBufferIPA)
    configured(width)
    for range in memory {
      let top = range.end & ~0xFFF
      let (rounded, overflow) = range.base.addingReportingOverflow(0xFFF)
      guard !overflow else { throw .misalignedRange(base: range.base, top: range.end) }
      let base = rounded & ~0xFFF
      // `top` is exclusive: RAM may end exactly at the top of the protected half.
      guard base <= top, top <= (1 << (width - 1)) else { throw .misalignedRange(base: range.base, top: range.end) }
      try rsi.setRIPAS(base: base, top: top, state: RSIConstant.ripasRAM)
    }
    try rsi.setRIPAS(base: dmaPool.base, top: dmaPool.end, state: RSIConstant.ripasEmpty)
    // RsiRealmConfig.hash_algo: the byte at 0x8 (the algorithm the RMM extends the REMs with).
    let hashAlgorithm = UInt64(configBuffer.load(fromByteOffset: 8, as: UInt8.self))
    let rim = try rsi.measurement(index: 0)
    return RealmEnvironment(versionLower: v.lower, versionHigher: v.higher, ipaWidth: width,
                            hashAlgorithm: hashAlgorithm, rim: rim)
  }
}

/// One thing the firmware measured into a Realm Extensible Measurement before entering Linux.
public struct BootMeasurement: Equatable {
  /// What was measured.
  public enum Item: Equatable {
    case deviceTree, kernel, commandLine, initrd

    /// The REM it goes into, as edk2's Arm CCA measured boot would put it: the TCG PC Client PCR
    /// the event belongs to, mapped PCR 1,7 → REM0, 2–6 → REM1, 8–15 → REM2 (UEFI Code First
    /// #11383). The DTB is platform configuration (PCR 1, EV_NONHOST_CONFIG in edk2 PR 12535),
    /// the kernel a boot application (PCR 4, EV_EFI_BOOT_SERVICES_APPLICATION), and the command
    /// line and initrd are what Linux's EFI stub measures into PCR 9 (EV_EVENT_TAG).
    public var rem: UInt64 {
      switch self {
      case .deviceTree: return 0
      case .kernel: return 1
      case .commandLine, .initrd: return 2
      }
    }

    public var name: String {
      switch self {
      case .deviceTree: return "device tree"
      case .kernel: return "kernel"
      case .commandLine: return "command line"
      case .initrd: return "initrd"
      }
    }
  }

  public var item: Item
  /// REM0...REM3 (RSI index `rem + 1`).
  public var rem: UInt64 { item.rem }
  /// The SHA-256 digest extended into the REM.
  public var digest: [UInt8]

  public init(item: Item, digest: [UInt8]) {
    self.item = item
    self.digest = digest
  }
}

/// The measured-boot step: what the firmware extends into the REMs before it enters the kernel.
public enum MeasuredBoot {
  /// The measurements, in the order they are extended: the DTB the VMM passed in, the kernel image
  /// as loaded (its file bytes), the command line handed to Linux (its bytes, no terminator; none
  /// when empty), then the initrd (all initrds as loaded, concatenated; none when there is none),
  /// each the SHA-256 digest of its bytes.
  public static func measurements(
    deviceTree: UnsafeRawBufferPointer, kernel: UnsafeRawBufferPointer, commandLine: [UInt8],
    initrd: UnsafeRawBufferPointer
  ) -> [BootMeasurement] {
    var result = [
      BootMeasurement(item: .deviceTree, digest: SHA256.hash(deviceTree)),
      BootMeasurement(item: .kernel, digest: SHA256.hash(kernel)),
    ]
    if !commandLine.isEmpty { result.append(BootMeasurement(item: .commandLine, digest: SHA256.hash(commandLine))) }
    if initrd.count > 0 { result.append(BootMeasurement(item: .initrd, digest: SHA256.hash(initrd))) }
    return result
  }

  /// The REMs after `measurements` are extended, in order, into registers that start as zeros, as
  /// the RMM extends them: `REM ← H(REM || digest)` with the realm's hash algorithm (TF-RMM
  /// `handle_rsi_measurement_extend`: the value is not padded). REM0...REM3.
  public static func registers(after measurements: [BootMeasurement], algorithm: RealmHashAlgorithm) -> [[UInt8]] {
    var registers = [[UInt8]](repeating: [UInt8](repeating: 0, count: algorithm.digestSize), count: 4)
    for m in measurements {
      let i = Int(m.rem)
      let input = registers[i] + m.digest
      registers[i] = algorithm == .sha256 ? SHA256.hash(input) : SHA512.hash(input)
    }
    return registers
  }

  /// Extends each measurement into its REM (RSI_MEASUREMENT_EXTEND, index rem + 1), in order;
  /// `extended` runs after each successful call (to log it).
  public static func extend<C: SMCConduit>(
    _ measurements: [BootMeasurement], rsi: inout RealmServiceInterface<C>,
    extended: (BootMeasurement) -> Void = { _ in }
  ) throws(RSIError) {
    for m in measurements {
      try rsi.extendMeasurement(index: m.rem + 1, value: m.digest)
      extended(m)
    }
  }
}
