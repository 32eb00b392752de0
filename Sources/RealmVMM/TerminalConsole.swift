import Devices
import Platform
import Synchronization

/// The host side of the guest console: guest output to standard output as it comes (and to a log
/// file), standard input to the guest.
///
/// On a terminal, input is switched to raw mode so every key reaches the guest; Ctrl-A x quits
/// (Ctrl-A Ctrl-A sends a Ctrl-A), as in QEMU. The terminal is restored on every exit path.
public final class TerminalConsole: ConsoleOutput, @unchecked Sendable {
  /// The escape key (Ctrl-A) and the key after it that quits.
  static let escape: UInt8 = 0x01
  static let quit = UInt8(ascii: "x")

  private let output: FileDescriptor
  private let log: FileDescriptor?
  private let input: FileDescriptor
  private let stopping = Atomic<Bool>(false)
  private var inputThread: pthread_t?
  /// `--until` / `--fail-on`, and what to do on the first match.
  private let watch = Mutex<(lines: ConsoleLineWatch, matched: @Sendable (ConsoleLineWatch.Match) -> Void)?>(nil)

  /// `logPath`: a file that receives a copy of all guest output (created or truncated).
  public init(
    logPath: String? = nil, output: FileDescriptor = .standardOutput, input: FileDescriptor = .standardInput
  ) throws(VMMError) {
    self.output = output
    self.input = input
    if let logPath {
      do {
        log = try .open(logPath, O_WRONLY | O_CREAT | O_TRUNC)
      } catch {
        throw .file(path: logPath, errno: error, action: "create the console log")
      }
    } else {
      log = nil
    }
  }

  deinit {
    stopInput()
    log?.close()
  }

  /// Writes guest output to the output and the log. A failure is dropped: a closed stdout must
  /// not stop the guest.
  public func write(_ bytes: UnsafeRawBufferPointer) {
    try? output.write(bytes)
    try? log?.write(bytes)
    if let (lines, matched) = watch.withLock({ $0 }), let match = lines.feed(bytes) { matched(match) }
  }

  /// Checks every complete line of output against `lines`; `matched` runs for each match.
  func watch(_ lines: ConsoleLineWatch, matched: @escaping @Sendable (ConsoleLineWatch.Match) -> Void) {
    watch.withLock { $0 = (lines, matched) }
  }

  /// Starts forwarding input to `deliver` (which returns how many bytes it took). `quit` runs when
  /// the user types the escape sequence.
  public func startInput(deliver: @escaping @Sendable (UInt8) -> Bool, quit: @escaping @Sendable () -> Void) {
    if input.isTerminal { TerminalMode.enterRaw(input) }
    inputThread = startThread { [self] in
      var sawEscape = false
      var byte: UInt8 = 0
      while !stopping.load(ordering: .relaxed) {
        var poller = pollfd(fd: input.rawValue, events: Int16(POLLIN), revents: 0)
        let ready = retryingOnInterrupt { poll(&poller, 1, 100) }
        if ready == 0 { continue }
        // EOF or error: no more input.
        guard ready > 0, (try? withUnsafeMutableBytes(of: &byte) { try input.read(into: $0) }) == 1 else { return }
        if sawEscape {
          sawEscape = false
          if byte == Self.quit {
            quit()
            return
          }
          if byte != Self.escape { while !deliver(Self.escape) { usleep(1000) } }
        } else if byte == Self.escape {
          sawEscape = true
          continue
        }
        while !deliver(byte), !stopping.load(ordering: .relaxed) { usleep(1000) }
      }
    }
  }

  /// Stops forwarding input and restores the terminal.
  public func stopInput() {
    stopping.store(true, ordering: .relaxed)
    if let thread = inputThread {
      pthread_join(thread, nil)
      inputThread = nil
    }
    TerminalMode.restore()
  }
}

/// The terminal's original mode, restored by ``TerminalConsole``, at exit, on SIGINT, SIGTERM and
/// SIGHUP (through ``TerminationSignals``), and on a fatal signal (a crash of realm-run itself).
public enum TerminalMode {
  /// The saved mode lives at a fixed address, written before raw mode starts, so that a signal
  /// handler can restore it with nothing but tcsetattr (async-signal-safe).
  nonisolated(unsafe) private static let saved = UnsafeMutablePointer<termios>.allocate(capacity: 1)
  private static let savedFD = Atomic<Int32>(-1)
  /// Signals that end the process abnormally: restore the terminal, then die of the signal as before.
  static let fatalSignals = [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGQUIT]

  static func enterRaw(_ terminal: FileDescriptor) {
    let fd = terminal.rawValue
    guard savedFD.load(ordering: .acquiring) < 0, tcgetattr(fd, saved) == 0 else { return }
    var raw = saved.pointee
    cfmakeraw(&raw)
    raw.c_oflag = saved.pointee.c_oflag  // keep output processing as it was
    savedFD.store(fd, ordering: .releasing)
    installFatalSignalHandlers()
    tcsetattr(fd, TCSANOW, &raw)
    atexit { TerminalMode.restore() }
  }

  /// Puts the terminal back as it was; safe to call more than once, and from a signal handler.
  public static func restore() {
    let fd = savedFD.exchange(-1, ordering: .acquiringAndReleasing)
    guard fd >= 0 else { return }
    tcsetattr(fd, TCSANOW, saved)
  }

  private static func installFatalSignalHandlers() {
    for number in fatalSignals {
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { number in
        TerminalMode.restore()
        signal(number, SIG_DFL)  // as SA_RESETHAND did already; harmless, and clear to the reader
        raise(number)  // not blocked (SA_NODEFER): the default action ends the process as it would have
      }
      sigemptyset(&action.sa_mask)
      action.sa_flags = Int32(truncatingIfNeeded: Int(SA_RESETHAND) | Int(SA_NODEFER))
      sigaction(number, &action, nil)
    }
  }
}

/// SIGINT, SIGTERM and SIGHUP, the ways a shell, a terminal or a harness asks a process to stop.
///
/// ``block(otherwise:)`` holds them in the calling thread and in every thread it starts afterwards,
/// and one thread of their own waits for them (sigwait): a signal then never lands in the middle of a
/// vCPU's or the I/O thread's work. What happens to one is the current ``route(to:)``: a running
/// machine stops as after Ctrl-A x (vCPUs stopped, disk writes completed and flushed, terminal
/// restored); before or after a run, realm-run restores the terminal and exits with 128 + the signal.
public enum TerminationSignals {
  public static let numbers = [SIGINT, SIGTERM, SIGHUP]
  private static let handler = Mutex<(@Sendable (Int32) -> Void)?>(nil)
  private static let started = Atomic<Bool>(false)

  /// Blocks the signals in this thread (call it before any other thread starts) and starts the
  /// thread that waits for them. `otherwise` handles a signal while nothing is routed.
  public static func block(otherwise: @escaping @Sendable (Int32) -> Void) {
    guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
    var set = signalSet()
    pthread_sigmask(SIG_BLOCK, &set, nil)
    _ = startThread {
      var set = signalSet()
      while true {
        var number: Int32 = 0
        guard sigwait(&set, &number) == 0 else { continue }
        if let routed = handler.withLock({ $0 }) { routed(number) } else { otherwise(number) }
      }
    }
  }

  /// Sends the signals to `handler` until ``unroute()``.
  static func route(to handler: @escaping @Sendable (Int32) -> Void) {
    self.handler.withLock { $0 = handler }
  }

  static func unroute() {
    handler.withLock { $0 = nil }
  }

  /// The signal's name, for messages (`SIGTERM`).
  public static func name(_ number: Int32) -> String {
    switch number {
    case SIGINT: return "SIGINT"
    case SIGTERM: return "SIGTERM"
    case SIGHUP: return "SIGHUP"
    default: return "signal \(number)"
    }
  }

  private static func signalSet() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    for number in numbers { sigaddset(&set, number) }
    return set
  }
}
