import Platform
import Synchronization
import Testing
@testable import RealmVMM

/// The console's input path through a pipe (no terminal: no raw mode): bytes reach the guest,
/// Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A.
@Suite struct TerminalConsoleTests {
  final class Received: @unchecked Sendable {
    let bytes = Mutex<[UInt8]>([])
    let quits = Atomic<Int>(0)
  }

  func run(_ input: [UInt8]) throws -> Received {
    var pipeFDs: [Int32] = [0, 0]
    #expect(pipe(&pipeFDs) == 0)
    let console = try TerminalConsole(output: .open("/dev/null", O_WRONLY), input: FileDescriptor(rawValue: pipeFDs[0]))
    let received = Received()
    console.startInput(
      deliver: { byte in
        received.bytes.withLock { $0.append(byte) }
        return true
      },
      quit: { received.quits.add(1, ordering: .relaxed) })
    _ = input.withUnsafeBytes { write(pipeFDs[1], $0.baseAddress, $0.count) }
    close(pipeFDs[1])  // end of input: the reader stops
    for _ in 0..<200 where received.bytes.withLock({ $0.count }) < input.count && received.quits.load(ordering: .relaxed) == 0 {
      usleep(5000)
    }
    console.stopInput()
    close(pipeFDs[0])
    return received
  }

  @Test func bytesReachTheGuest() throws {
    let received = try run(Array("ls\r".utf8))
    #expect(received.bytes.withLock { $0 } == Array("ls\r".utf8))
    #expect(received.quits.load(ordering: .relaxed) == 0)
  }

  @Test func escapeThenXQuitsAndNothingAfterIsSent() throws {
    let received = try run(Array("a".utf8) + [0x01, UInt8(ascii: "x")] + Array("b".utf8))
    #expect(received.quits.load(ordering: .relaxed) == 1)
    #expect(received.bytes.withLock { $0 } == Array("a".utf8))
  }

  @Test func doubledEscapeSendsOneAndOtherKeysPassThrough() throws {
    let received = try run([0x01, 0x01, 0x01, UInt8(ascii: "q")])
    #expect(received.quits.load(ordering: .relaxed) == 0)
    #expect(received.bytes.withLock { $0 } == [0x01, 0x01, UInt8(ascii: "q")])
  }
}

/// Raw mode on a real pseudo-terminal, and its restoration (what SIGINT, SIGTERM, SIGHUP and a
/// fatal signal all end in; Scripts/nested-tests sends those signals to a running realm-run on a
/// real terminal).
@Suite(.serialized) struct TerminalModeTests {
  @Test func rawModeOnAPseudoTerminalIsUndoneExactly() throws {
    var primary: Int32 = -1
    var secondary: Int32 = -1
    #expect(openpty(&primary, &secondary, nil, nil, nil) == 0)
    defer {
      close(primary)
      close(secondary)
    }
    var before = termios()
    #expect(tcgetattr(secondary, &before) == 0)
    #expect(before.c_lflag & tcflag_t(ICANON) != 0)

    TerminalMode.enterRaw(FileDescriptor(rawValue: secondary))
    var raw = termios()
    #expect(tcgetattr(secondary, &raw) == 0)
    #expect(raw.c_lflag & tcflag_t(ICANON | ECHO | ISIG) == 0)
    #expect(raw.c_oflag == before.c_oflag)  // output processing kept: guest lines still end in CRLF

    TerminalMode.restore()
    TerminalMode.restore()  // a second restore (atexit after a signal) changes nothing
    var after = termios()
    #expect(tcgetattr(secondary, &after) == 0)
    #expect(after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag && after.c_oflag == before.c_oflag
      && after.c_cflag == before.c_cflag)
  }
}
