import Platform

/// A KVM operation that failed, with what the kernel said.
public enum KVMError: Error, Equatable, CustomStringConvertible {
  /// `/dev/kvm` could not be opened.
  case unavailable(path: String, errno: Int32)
  /// An ioctl failed.
  case ioctl(StaticString, errno: Int32)
  /// The host lacks something realm-run needs.
  case unsupported(String)

  public var description: String {
    switch self {
    case .unavailable(let path, let errno):
      let hint =
        errno == ENOENT ? " (is KVM enabled in this kernel? load kvm or boot at EL2)"
        : errno == EACCES ? " (add yourself to the kvm group or run as root)" : ""
      return "cannot open \(path): \(Errno(rawValue: errno))\(hint)"
    case .ioctl(let name, let errno):
      return "\(name) failed: \(Errno(rawValue: errno))"
    case .unsupported(let what):
      return what
    }
  }

  /// The errno of a failed ioctl, if that is what this is.
  public var errno: Int32? {
    switch self {
    case .unavailable(_, let errno), .ioctl(_, let errno): return errno
    case .unsupported: return nil
    }
  }

  public static func == (lhs: KVMError, rhs: KVMError) -> Bool {
    lhs.description == rhs.description
  }
}
