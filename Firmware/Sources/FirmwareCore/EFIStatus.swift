/// A UEFI status code (UEFI 2.10 Appendix D): what every boot and runtime service returns.
///
/// Errors have the top bit set; warnings do not. The firmware's services return
/// `EFIStatus.success` or throw one of the error codes, and the C-ABI layer hands the
/// raw value to the caller.
public struct EFIStatus: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
  public let rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }

  static let errorBit: UInt64 = 1 << 63
  static func error(_ code: UInt64) -> EFIStatus { EFIStatus(rawValue: errorBit | code) }

  public var isError: Bool { rawValue & EFIStatus.errorBit != 0 }

  public static let success = EFIStatus(rawValue: 0)
  public static let loadError = error(1)
  public static let invalidParameter = error(2)
  public static let unsupported = error(3)
  public static let badBufferSize = error(4)
  public static let bufferTooSmall = error(5)
  public static let notReady = error(6)
  public static let deviceError = error(7)
  public static let writeProtected = error(8)
  public static let outOfResources = error(9)
  public static let volumeCorrupted = error(10)
  public static let noMedia = error(12)
  public static let mediaChanged = error(13)
  public static let notFound = error(14)
  public static let accessDenied = error(15)
  public static let noMapping = error(17)
  public static let timeout = error(18)
  public static let alreadyStarted = error(20)
  public static let aborted = error(21)
  public static let securityViolation = error(26)
  public static let crcError = error(27)
  public static let endOfFile = error(31)

  public var description: String {
    switch self {
    case .success: return "EFI_SUCCESS"
    case .loadError: return "EFI_LOAD_ERROR"
    case .invalidParameter: return "EFI_INVALID_PARAMETER"
    case .unsupported: return "EFI_UNSUPPORTED"
    case .badBufferSize: return "EFI_BAD_BUFFER_SIZE"
    case .bufferTooSmall: return "EFI_BUFFER_TOO_SMALL"
    case .notReady: return "EFI_NOT_READY"
    case .deviceError: return "EFI_DEVICE_ERROR"
    case .writeProtected: return "EFI_WRITE_PROTECTED"
    case .outOfResources: return "EFI_OUT_OF_RESOURCES"
    case .volumeCorrupted: return "EFI_VOLUME_CORRUPTED"
    case .noMedia: return "EFI_NO_MEDIA"
    case .mediaChanged: return "EFI_MEDIA_CHANGED"
    case .notFound: return "EFI_NOT_FOUND"
    case .accessDenied: return "EFI_ACCESS_DENIED"
    case .noMapping: return "EFI_NO_MAPPING"
    case .timeout: return "EFI_TIMEOUT"
    case .alreadyStarted: return "EFI_ALREADY_STARTED"
    case .aborted: return "EFI_ABORTED"
    case .securityViolation: return "EFI_SECURITY_VIOLATION"
    case .crcError: return "EFI_CRC_ERROR"
    case .endOfFile: return "EFI_END_OF_FILE"
    default: return isError ? "EFI error \(rawValue & ~EFIStatus.errorBit)" : "EFI warning \(rawValue)"
    }
  }
}
