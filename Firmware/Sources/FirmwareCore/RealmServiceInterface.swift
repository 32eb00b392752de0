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
}

/// What the firmware learned and did when it found itself in a Realm.
public struct RealmEnvironment: Equatable {
  public var versionLower: UInt64
  public var versionHigher: UInt64
  public var ipaWidth: UInt64
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
      guard base <= top, top < (1 << (width - 1)) else { throw .misalignedRange(base: range.base, top: range.end) }
      try rsi.setRIPAS(base: base, top: top, state: RSIConstant.ripasRAM)
    }
    try rsi.setRIPAS(base: dmaPool.base, top: dmaPool.end, state: RSIConstant.ripasEmpty)
    let rim = try rsi.measurement(index: 0)
    return RealmEnvironment(versionLower: v.lower, versionHigher: v.higher, ipaWidth: width, rim: rim)
  }
}
