import Platform
import Synchronization

/// A POSIX extended regular expression (as `grep -E` takes it), compiled once.
public final class ConsolePattern: @unchecked Sendable {  // regexec on a compiled regex_t is thread-safe
  public let source: String
  private var compiled = regex_t()

  /// Why a pattern does not compile (one line).
  public struct InvalidPattern: Error, CustomStringConvertible {
    public let description: String
  }

  /// Compiles `source`.
  public init(_ source: String) throws(InvalidPattern) {
    self.source = source
    let status = regcomp(&compiled, source, REG_EXTENDED | REG_NOSUB)
    guard status == 0 else {
      var message = [UInt8](repeating: 0, count: 256)
      message.withUnsafeMutableBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { _ = regerror(status, &compiled, $0.baseAddress, $0.count) }
      }
      regfree(&compiled)
      throw InvalidPattern(description: "'\(source)' is not an extended regular expression: \(String(decoding: message.prefix { $0 != 0 }, as: UTF8.self))")
    }
  }

  deinit { regfree(&compiled) }

  public func matches(_ line: String) -> Bool {
    regexec(&compiled, line, 0, nil, 0) == 0
  }
}

/// Watches the guest's console output line by line for `--until` and `--fail-on`: the first line
/// that matches decides how the run ends.
///
/// Output arrives in pieces from any vCPU; a line ends at a newline, a carriage return before it
/// is dropped, and only the first ``maximumLineLength`` bytes of a longer line are kept and matched
/// (the guest decides how long its lines are).
public final class ConsoleLineWatch: Sendable {
  public enum Match: Equatable, Sendable {
    /// A line matched `--until`.
    case until(String)
    /// A line matched `--fail-on`.
    case failOn(String)
  }

  public static let maximumLineLength = 4096

  let until: ConsolePattern?
  let failOn: ConsolePattern?
  private let line = Mutex<[UInt8]>([])

  public init(until: ConsolePattern?, failOn: ConsolePattern?) {
    self.until = until
    self.failOn = failOn
  }

  /// Feeds output; returns the first match among the lines it completes, if any (`--fail-on`
  /// first where one line matches both).
  public func feed(_ bytes: UnsafeRawBufferPointer) -> Match? {
    line.withLock { line -> Match? in
      var found: Match?
      for byte in bytes {
        if byte == UInt8(ascii: "\n") {
          if line.last == UInt8(ascii: "\r") { line.removeLast() }
          let text = String(decoding: line, as: UTF8.self)
          line.removeAll(keepingCapacity: true)
          if found == nil { found = match(text) }
        } else if line.count < Self.maximumLineLength {
          line.append(byte)
        }
      }
      return found
    }
  }

  func match(_ text: String) -> Match? {
    if let failOn, failOn.matches(text) { return .failOn(text) }
    if let until, until.matches(text) { return .until(text) }
    return nil
  }
}
