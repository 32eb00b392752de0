import RealmVMM

/// realm-run's exit statuses (documented in the README and the man page).
enum ExitStatus: Int32, Error, CaseIterable {
  case poweredOff = 0
  case vmmError = 1
  case reset = 2
  case crashed = 3
  case firmwareFailed = 4
  case usage = 64
  case timedOut = 124
  case quit = 130

  /// The status for how a run ended.
  init(_ outcome: Outcome) {
    switch outcome {
    case .poweredOff: self = .poweredOff
    case .reset: self = .reset
    case .crashed: self = .crashed
    case .firmwareFailed: self = .firmwareFailed
    case .timedOut: self = .timedOut
    case .quit: self = .quit
    }
  }
}

/// Restores the terminal before realm-run exits, whichever way it exits.
enum TerminalModeGuard {
  static func restore() { TerminalMode.restore() }
}
