import Synchronization

/// A level-triggered interrupt line into the guest's interrupt controller.
public protocol InterruptLine: Sendable {
  /// Drives the line high (`true`) or low.
  func set(level: Bool)
}

/// One level-triggered line that several devices share (PCI INTx: slots 0, 4, 8, ... on INTA's
/// line): high while any of them holds it high, as the wire's open-drain OR is. Each device gets
/// its own ``source()``; without this, one device lowering the line after its ISR read would drop
/// another's pending interrupt, which then no read would ever end.
public final class WiredOrLine: Sendable {
  private let line: any InterruptLine
  /// Each source's level (bit n: source n), and the number of sources handed out. The line is
  /// driven under this lock, so its changes reach it in the order the sources made them.
  private let state = Mutex((levels: UInt64(0), sources: 0))

  /// A shared `line` (at most 64 sources).
  public init(_ line: any InterruptLine) {
    self.line = line
  }

  /// A new device's end of the line, low.
  public func source() -> any InterruptLine {
    let index = state.withLock { state in
      precondition(state.sources < 64, "at most 64 sources on one line")
      defer { state.sources += 1 }
      return state.sources
    }
    return Source(shared: self, bit: UInt64(1) << UInt64(index))
  }

  private func set(_ bit: UInt64, level: Bool) {
    state.withLock { state in
      let before = state.levels != 0
      if level { state.levels |= bit } else { state.levels &= ~bit }
      let after = state.levels != 0
      if after != before { line.set(level: after) }
    }
  }

  private struct Source: InterruptLine {
    let shared: WiredOrLine
    let bit: UInt64
    func set(level: Bool) { shared.set(bit, level: level) }
  }
}
