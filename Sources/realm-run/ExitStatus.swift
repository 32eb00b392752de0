import Platform
import RealmVMM

/// realm-run's exit statuses (documented in the README and the man page).
enum ExitStatus: Int32, Error, CaseIterable {
  case poweredOff = 0
  case vmmError = 1
  case reset = 2
  case crashed = 3
  case firmwareFailed = 4
  /// A console line matched --fail-on.
  case consoleFailure = 5
  /// `verify`: a signature, the binding or a claim did not match.
  case verificationFailed = 6
  /// `verify`: the token, the reference values or the CPAK could not be read or decoded.
  case unreadableEvidence = 7
  case usage = 64
  case timedOut = 124
  /// SIGHUP (128 + 1), as a shell reports a process the signal ended.
  case hangUp = 129
  /// Ctrl-A x, or SIGINT (128 + 2).
  case quit = 130
  /// SIGTERM (128 + 15).
  case terminated = 143

  /// The status for how a run ended.
  init(_ outcome: Outcome) {
    switch outcome {
    case .poweredOff, .consoleMatched: self = .poweredOff
    case .consoleFailure: self = .consoleFailure
    case .reset: self = .reset
    case .crashed: self = .crashed
    case .firmwareFailed: self = .firmwareFailed
    case .timedOut: self = .timedOut
    case .quit: self = .quit
    case .signalled(let number): self = ExitStatus(signal: number)
    }
  }

  /// The status for a run ended by SIGINT, SIGTERM or SIGHUP.
  init(signal number: Int32) {
    switch number {
    case SIGHUP: self = .hangUp
    case SIGTERM: self = .terminated
    default: self = .quit
    }
  }
}

/// Restores the terminal before realm-run exits, whichever way it exits.
enum TerminalModeGuard {
  static func restore() { TerminalMode.restore() }
}
