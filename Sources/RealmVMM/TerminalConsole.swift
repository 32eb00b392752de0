import Devices
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The host side of the guest console: guest output to standard output as it comes (and to a log
/// file), standard input to the guest.
///
/// On a terminal, input is switched to raw mode so every key reaches the guest; Ctrl-A x quits
/// (Ctrl-A Ctrl-A sends a Ctrl-A), as in QEMU. The terminal is restored on every exit path.
public final class TerminalConsole: ConsoleOutput, @unchecked Sendable {
  /// The escape key (Ctrl-A) and the key after it that quits.
  static let escape: UInt8 = 0x01
  static let quit = UInt8(ascii: "x")

  private let outputFD: Int32
  private let logFD: Int32?
  private let inputFD: Int32
  private let stopping = Atomic<Bool>(false)
  private var inputThread: pthread_t?

  /// `logPath`: a file that receives a copy of all guest output (created or truncated).
  public init(logPath: String? = nil, outputFD: Int32 = STDOUT_FILENO, inputFD: Int32 = STDIN_FILENO) throws(VMMError) {
    self.outputFD = outputFD
    self.inputFD = inputFD
    if let logPath {
      let fd = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
      guard fd >= 0 else { throw .file(path: logPath, errno: errno, action: "create the console log") }
      logFD = fd
    } else {
      logFD = nil
    }
  }

  deinit {
    stopInput()
    if let logFD { close(logFD) }
  }

  public func write(_ bytes: UnsafeRawBufferPointer) {
    writeAll(outputFD, bytes)
    if let logFD { writeAll(logFD, bytes) }
  }

  /// Starts forwarding input to `deliver` (which returns how many bytes it took). `quit` runs when
  /// the user types the escape sequence.
  public func startInput(deliver: @escaping @Sendable (UInt8) -> Bool, quit: @escaping @Sendable () -> Void) {
    if isatty(inputFD) == 1 { TerminalMode.enterRaw(inputFD) }
    let input = inputFD
    inputThread = startThread(name: "console-in") { [self] in
      var sawEscape = false
      var byte: UInt8 = 0
      while !stopping.load(ordering: .relaxed) {
        var poller = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, 100)
        if ready == 0 || (ready < 0 && errno == EINTR) { continue }
        guard ready > 0, read(input, &byte, 1) == 1 else { return }  // EOF or error: no more input
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

  private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    guard var next = bytes.baseAddress else { return }
    var remaining = bytes.count
    while remaining > 0 {
      let written = Glibc.write(fd, next, remaining)
      if written < 0 {
        if errno == EINTR || errno == EAGAIN { continue }
        return  // a closed stdout must not stop the guest
      }
      next += written
      remaining -= written
    }
  }
}

/// The terminal's original mode, restored at exit, on a fatal signal, and by ``TerminalConsole``.
public enum TerminalMode {
  nonisolated(unsafe) private static var saved: termios?
  nonisolated(unsafe) private static var savedFD: Int32 = -1

  static func enterRaw(_ fd: Int32) {
    var original = termios()
    guard tcgetattr(fd, &original) == 0 else { return }
    saved = original
    savedFD = fd
    var raw = original
    cfmakeraw(&raw)
    raw.c_oflag = original.c_oflag  // keep output processing as it was
    tcsetattr(fd, TCSANOW, &raw)
    atexit { TerminalMode.restore() }
  }

  /// Puts the terminal back as it was; safe to call more than once.
  public static func restore() {
    guard var original = saved else { return }
    tcsetattr(savedFD, TCSANOW, &original)
    saved = nil
  }
}
