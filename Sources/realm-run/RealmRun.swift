import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `realm-run`: the root command. With no subcommand it runs a machine (``RunCommand``).
@main
struct RealmRun: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "realm-run",
    abstract: "Run an Arm CCA Realm (or a normal VM) with KVM, from a disk, firmware or kernel.",
    discussion: """
      With no subcommand, realm-run runs a machine: see 'realm-run run --help'.

      EXIT STATUS
        0    the guest powered off
        1    realm-run failed (KVM, files, host support); one line on stderr says why
        2    the guest asked for a reset
        3    the guest crashed or stopped in a way KVM could not continue
        64   the command line was wrong
        124  --timeout passed before the guest finished
        130  the user quit with Ctrl-A x
      """,
    version: RealmRunVersion.current,
    subcommands: [RunCommand.self, ImageCommand.self, MeasureCommand.self, HostInfoCommand.self],
    defaultSubcommand: RunCommand.self)

  /// Parses and runs, reporting every failure as one line on stderr and a documented status.
  static func main() {
    let status: ExitStatus
    do {
      var command = try parseAsRoot()
      try command.run()
      status = .poweredOff
    } catch let exit as ExitStatus {
      status = exit
    } catch {
      let code = exitCode(for: error)
      guard code != .success else { exit(withError: error) }  // --help, --version
      report(message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)")
      status = code == .validationFailure ? .usage : .vmmError
    }
    TerminalModeGuard.restore()
    Glibc.exit(status.rawValue)
  }

  /// Prints `realm-run: message` as one line on stderr.
  static func report(_ message: String) {
    writeStandardError("realm-run: " + message.split(separator: "\n").joined(separator: " ") + "\n")
  }

  /// Writes `text` to stderr as it is, unbuffered (so it shows before a crash or an exit).
  static func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(STDERR_FILENO, &bytes, bytes.count)
  }
}

enum RealmRunVersion {
  static let current = "0.1.0"
}
