/// A failed system call's error number, as a Swift error.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  /// The error number (`ENOENT`, `EINTR`, ...).
  public let rawValue: Int32

  /// The error `rawValue` (`Errno(rawValue: ENOENT)`).
  public init(rawValue: Int32) {
    self.rawValue = rawValue
  }

  /// The calling thread's `errno`: what the system call that just failed said.
  public static var current: Errno { Errno(rawValue: errno) }

  /// The system's text for the error ("No such file or directory").
  public var description: String { String(cString: strerror(rawValue)) }

  /// Matches an error number in a `switch` over an `Errno`: `case ENOENT:`.
  public static func ~= (code: Int32, error: Errno) -> Bool {
    code == error.rawValue
  }
}
