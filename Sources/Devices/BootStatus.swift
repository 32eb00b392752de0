import Synchronization

/// The boot-status register page (DTB `compatible = "realm-run,boot-status"`): how a guest firmware
/// that cannot boot tells realm-run so, and why, before it powers the guest off. It is plain MMIO,
/// so it works the same in a normal VM and in a Realm (reached there through the unprotected
/// alias, like every device).
///
/// | offset | access | meaning |
/// |---|---|---|
/// | `0x0` | 32-bit read/write | failure code: 0 none (the reset value), anything else a failure |
/// | `0x4` | 8-bit write | the next character of the reason (reads as 0) |
///
/// The guest is untrusted: the reason keeps at most ``maximumReasonLength`` characters, each
/// printable ASCII (tab, CR and LF become spaces, any other byte `?`); later characters are
/// dropped. Nothing else in the page does anything: reads are 0, writes are ignored.
public final class BootStatus: MMIODevice {
  /// Register offsets.
  public enum Register {
    public static let failureCode: UInt64 = 0x0
    public static let reason: UInt64 = 0x4
  }

  /// The page's size on the bus and in the DTB.
  public static let size: UInt64 = 0x1000
  /// The most reason characters kept (enough for one line on stderr).
  public static let maximumReasonLength = 200

  /// A failure the guest reported.
  public struct Failure: Equatable, Sendable {
    /// The code written at offset 0 (never 0).
    public var code: UInt32
    /// The reason, sanitized (possibly empty).
    public var reason: String

    public init(code: UInt32, reason: String) {
      self.code = code
      self.reason = reason
    }
  }

  struct State {
    var code: UInt32 = 0
    var reason: [UInt8] = []
  }

  private let state = Mutex(State())

  public init() {}

  /// The failure reported so far, or nil while the failure code is 0.
  public var failure: Failure? {
    state.withLock { state in
      state.code == 0 ? nil : Failure(code: state.code, reason: String(decoding: state.reason, as: UTF8.self))
    }
  }

  public func read(offset: UInt64, size: Int) -> UInt64 {
    offset == Register.failureCode ? UInt64(state.withLock { $0.code }) : 0
  }

  public func write(offset: UInt64, size: Int, value: UInt64) {
    switch offset {
    case Register.failureCode:
      state.withLock { $0.code = UInt32(truncatingIfNeeded: value) }
    case Register.reason:
      let byte = UInt8(truncatingIfNeeded: value)
      state.withLock { state in
        guard state.reason.count < Self.maximumReasonLength else { return }
        state.reason.append(Self.sanitized(byte))
      }
    default:
      break
    }
  }

  /// `byte` as the reason shows it: printable ASCII as is, blanks as spaces, anything else `?`.
  static func sanitized(_ byte: UInt8) -> UInt8 {
    switch byte {
    case 0x20...0x7E: return byte
    case 0x09, 0x0A, 0x0D: return 0x20
    default: return 0x3F
    }
  }
}
