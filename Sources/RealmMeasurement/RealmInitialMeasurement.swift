// swift-crypto's SHA-2 (BoringSSL: SHA-NI on x86, the ARMv8 SHA-2 instructions on arm64): a RIM
// hashes every populated granule, 50 MB and more for a distribution kernel, and FirmwareCore's
// plain-Swift rounds ran at about half of sha256sum's speed.
import Crypto
public import FirmwareCore

/// A Realm Initial Measurement as the RMM builds it: a rolling hash, extended by one 0x100-byte
/// measurement descriptor per measured RMI command.
///
/// DEN0137 A7.1.1: `RMI_REALM_CREATE` sets the first value; every later measured command builds a
/// descriptor that holds the current RIM, and the new RIM is the hash of that descriptor. Fields
/// are little-endian, unused bytes zero, and every hash field is 64 bytes wide (a SHA-256 value
/// fills the first 32). The order of the commands therefore changes the result.
public struct RealmInitialMeasurement: Sendable, Equatable {
  public let algorithm: RealmHashAlgorithm
  /// The current value as the 64-byte field the RMM stores (zero-padded for SHA-256).
  public private(set) var field: [UInt8]

  /// The measurement descriptor types (DEN0137 C1.11–C1.13).
  public enum DescriptorType: UInt8, Sendable {
    case data = 0
    case rec = 1
    case ripas = 2
  }

  /// The RIM after `RMI_REALM_CREATE`: the hash of the measured `RmiRealmParams` image
  /// (DEN0137 B4.3.9.4).
  public init(parameters: RealmParameters) {
    algorithm = parameters.hashAlgorithm
    field = Self.hashField(parameters.measuredImage, algorithm)
  }

  /// The value as the guest reads it from `RSI_MEASUREMENT_READ`: the digest's bytes only.
  public var digest: [UInt8] { Array(field.prefix(algorithm.digestSize)) }

  /// ``digest`` as lowercase hex.
  public var hex: String { digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

  /// `RMI_DATA_CREATE` of one 4 KiB granule (DEN0137 B4.3.1.4; `RmmMeasurementDescriptorData`,
  /// C1.11): desc_type 0 @0x00, len 0x100 @0x08, rim @0x10, ipa @0x50, flags @0x58
  /// (1 = `RMI_MEASURE_CONTENT`), content @0x60 = the granule's hash when measured, else zero.
  /// An unmeasured granule still extends the RIM.
  ///
  /// - Parameter contents: exactly 4096 bytes, or `nil` for `RMI_NO_MEASURE_CONTENT`.
  public mutating func extendData(ipa: UInt64, contents: ArraySlice<UInt8>?) throws(RIMError) {
    var descriptor = header(.data)
    descriptor.storeLE(ipa, at: 0x50, width: 8)
    if let contents {
      guard contents.count == 4096, ipa % 4096 == 0 else { throw .unalignedData(address: ipa, size: contents.count) }
      descriptor.storeLE(1, at: 0x58, width: 8)
      descriptor.replaceSubrange(0x60..<0xa0, with: Self.hashField(contents, algorithm))
    } else {
      guard ipa % 4096 == 0 else { throw .unalignedData(address: ipa, size: 4096) }
    }
    field = Self.hashField(descriptor, algorithm)
  }

  /// `RMI_REC_CREATE` (DEN0137 B4.3.12.4; `RmmMeasurementDescriptorRec`, C1.12): desc_type 1,
  /// len 0x100, rim @0x10, content @0x50 = hash of the measured `RmiRecParams` image. A REC that
  /// is not runnable leaves the RIM unchanged.
  public mutating func extendREC(_ rec: RECParameters) {
    guard rec.runnable else { return }
    var descriptor = header(.rec)
    descriptor.replaceSubrange(0x50..<0x90, with: Self.hashField(rec.measuredImage, algorithm))
    field = Self.hashField(descriptor, algorithm)
  }

  /// One RTT entry of `RMI_RTT_INIT_RIPAS` under RMM 1.0 (DEN0137 B4.3.18.4;
  /// `RmmMeasurementDescriptorRipas`, C1.13): desc_type 2, len 0x100, rim @0x10, base @0x50,
  /// top @0x58 = base + the entry's size at its RTT level.
  public mutating func extendRIPAS(base: UInt64, top: UInt64) {
    var descriptor = header(.ripas)
    descriptor.storeLE(base, at: 0x50, width: 8)
    descriptor.storeLE(top, at: 0x58, width: 8)
    field = Self.hashField(descriptor, algorithm)
  }

  /// Applies one step of a launch.
  public mutating func extend(_ operation: MeasuredOperation) throws(RIMError) {
    switch operation {
    case .data(let ipa, let contents): try extendData(ipa: ipa, contents: contents)
    case .rec(let rec): extendREC(rec)
    case .ripas(let base, let top): extendRIPAS(base: base, top: top)
    }
  }

  /// A zeroed 0x100-byte descriptor with desc_type, len and the current RIM filled in.
  private func header(_ type: DescriptorType) -> [UInt8] {
    var descriptor = [UInt8](repeating: 0, count: 0x100)
    descriptor[0] = type.rawValue
    descriptor.storeLE(0x100, at: 0x08, width: 8)
    descriptor.replaceSubrange(0x10..<0x50, with: field)
    return descriptor
  }

  /// The hash of `bytes` as a 64-byte measurement field.
  static func hashField(_ bytes: ArraySlice<UInt8>, _ algorithm: RealmHashAlgorithm) -> [UInt8] {
    var result = bytes.withUnsafeBytes { raw in
      switch algorithm {
      case .sha256: return Array(Crypto.SHA256.hash(data: raw))
      case .sha512: return Array(Crypto.SHA512.hash(data: raw))
      }
    }
    result += [UInt8](repeating: 0, count: 64 - result.count)
    return result
  }

  static func hashField(_ bytes: [UInt8], _ algorithm: RealmHashAlgorithm) -> [UInt8] {
    hashField(bytes[...], algorithm)
  }
}

/// One measured RMI command of a Realm's construction.
public enum MeasuredOperation: Sendable, Equatable {
  /// `RMI_DATA_CREATE` of the 4 KiB granule at `ipa`; `nil` contents: not measured.
  case data(ipa: UInt64, contents: ArraySlice<UInt8>?)
  /// `RMI_REC_CREATE`.
  case rec(RECParameters)
  /// One RTT entry initialised by `RMI_RTT_INIT_RIPAS` (RMM 1.0 only).
  case ripas(base: UInt64, top: UInt64)
}
