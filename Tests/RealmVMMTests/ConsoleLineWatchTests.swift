import Platform
import Synchronization
import Testing

@testable import RealmVMM

/// `--until` and `--fail-on`: console output is matched a whole line at a time.
@Suite struct ConsoleLineWatchTests {
  func feed(_ watch: ConsoleLineWatch, _ pieces: [String]) -> [ConsoleLineWatch.Match] {
    pieces.compactMap { piece in Array(piece.utf8).withUnsafeBytes { watch.feed($0) } }
  }

  @Test func linesAreMatchedWholeAcrossPieces() throws {
    let watch = ConsoleLineWatch(until: try ConsolePattern("^GUEST_MARKER$"), failOn: try ConsolePattern("Kernel panic|Oops"))
    #expect(feed(watch, ["booting\r\nGUEST_", "MARK", "ER\r", "\nmore\n"]) == [.until("GUEST_MARKER")])
    #expect(feed(watch, ["[ 1.0] Oops: 0000 [#1]\n"]) == [.failOn("[ 1.0] Oops: 0000 [#1]")])
    // A line that matches both is a failure.
    let both = ConsoleLineWatch(until: try ConsolePattern("panic"), failOn: try ConsolePattern("Kernel panic"))
    #expect(feed(both, ["Kernel panic - not syncing\n"]) == [.failOn("Kernel panic - not syncing")])
    // No newline yet: no match.
    #expect(feed(watch, ["GUEST_MARKER"]).isEmpty)
  }

  @Test func aGuestsLongLinesAreCutNotStored() throws {
    let watch = ConsoleLineWatch(until: try ConsolePattern("^x+$"), failOn: nil)
    let long = String(repeating: "x", count: 1 << 20)
    let matches = feed(watch, [long, "\n"])
    #expect(matches == [.until(String(repeating: "x", count: ConsoleLineWatch.maximumLineLength))])
  }

  @Test func badPatternsAreRefused() {
    #expect(throws: ConsolePattern.InvalidPattern.self) { try ConsolePattern("(unclosed") }
    #expect(throws: ConsolePattern.InvalidPattern.self) { try ConsolePattern("a{2,1}") }
  }

  /// Through the console the guest writes to: the match is reported after the line is shown.
  @Test func theConsoleReportsTheFirstMatchingLine() throws {
    let console = try TerminalConsole(output: .open("/dev/null", O_WRONLY), input: .open("/dev/null", O_RDONLY))
    let seen = Mutex<[ConsoleLineWatch.Match]>([])
    console.watch(ConsoleLineWatch(until: try ConsolePattern("login:"), failOn: nil)) { match in
      seen.withLock { $0.append(match) }
    }
    for text in ["Debian GNU/Linux\n", "host login: ", "\n"] {
      Array(text.utf8).withUnsafeBytes { console.write($0) }
    }
    #expect(seen.withLock { $0 } == [.until("host login: ")])
  }
}
