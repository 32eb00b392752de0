import CTap
import Platform

/// A host tap device: Ethernet frames to and from the host's network stack, one per read and write.
/// realm-run opens an existing one by name (one the user may attach to: `ip tuntap add NAME mode
/// tap user USER`), or creates it when it runs as root; it is removed when realm-run closes it
/// unless it was made persistent.
public final class TapDevice: Sendable {
  /// The interface's name as the kernel has it.
  public let name: String
  public let descriptor: FileDescriptor

  /// Why a tap device could not be opened.
  public struct OpenError: Error, CustomStringConvertible, Equatable {
    public let name: String
    public let errno: Errno

    public init(name: String, errno: Errno) {
      self.name = name
      self.errno = errno
    }

    public var description: String {
      switch errno.rawValue {
      case ENOENT, ENODEV: return "tap \(name): /dev/net/tun is missing (load the tun module)"
      case EPERM, EACCES:
        return "tap \(name): not permitted: create it as root, or give this user an existing one (ip tuntap add \(name) mode tap user USER)"
      case EBUSY: return "tap \(name): in use by another process"
      default: return "tap \(name): \(errno)"
      }
    }
  }

  /// Opens (or creates) tap `name` (at most 15 bytes).
  public init(name: String) throws(OpenError) {
    var actual = [CChar](repeating: 0, count: Int(ctap_name_size))
    let fd = ctap_open(name, &actual)
    guard fd >= 0 else { throw OpenError(name: name, errno: Errno(rawValue: -fd)) }
    descriptor = FileDescriptor(rawValue: fd)
    self.name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  deinit {
    descriptor.close()
  }
}
