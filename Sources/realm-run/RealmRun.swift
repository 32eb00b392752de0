import ArgumentParser
import Platform

/// `realm-run`: the root command. With no subcommand it runs a machine (``RunCommand``).
@main
struct RealmRun: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "realm-run",
    abstract: "Run an Arm CCA Realm (or a normal VM) with KVM, from a disk, firmware or kernel.",
    discussion: """
      With no subcommand, realm-run runs a machine: see 'realm-run run --help'.

      EXIT STATUS
        0    the guest powered off, or a console line matched --until
        1    realm-run failed (KVM, files, host support); one line on stderr says why
        2    the guest asked for a reset
        3    the guest crashed or stopped in a way KVM could not continue
        4    the firmware could not boot the guest; one line on stderr says why
        5    a console line matched --fail-on; one line on stderr gives it
        6    verify: a signature, the binding or a claim of the token did not match
        7    verify: the token, the reference values or the CPAK could not be read
        64   the command line was wrong
        124  --timeout passed before the guest finished
        129  SIGHUP stopped the guest (disks flushed, terminal restored)
        130  the user quit with Ctrl-A x, or SIGINT stopped the guest
        143  SIGTERM stopped the guest
      """,
    version: RealmRunVersion.current,
    subcommands: [RunCommand.self, ImageCommand.self, MeasureCommand.self, VerifyCommand.self, HostInfoCommand.self],
    defaultSubcommand: RunCommand.self)

  /// Parses and runs, reporting every failure as one line on stderr and a documented status.
  static func main() {
    let status: ExitStatus
    do {
      if let problem = unknownHelpTopic(Array(CommandLine.arguments.dropFirst())) { throw ValidationError(problem) }
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
    Platform.exit(status.rawValue)
  }

  /// What is wrong with `help WORD` when WORD is no subcommand (ArgumentParser would print the root
  /// help and exit 0), or nil.
  static func unknownHelpTopic(_ arguments: [String]) -> String? {
    let names = configuration.subcommands.map { command in command._commandName }
    guard arguments.first == "help", arguments.count > 1, !names.contains(arguments[1]) else { return nil }
    return "help: no subcommand '\(arguments[1])' (there are: \(names.joined(separator: ", ")))"
  }

  /// Prints `realm-run: message` as one line on stderr.
  static func report(_ message: String) {
    writeStandardError("realm-run: " + message.split(separator: "\n").joined(separator: " ") + "\n")
  }

  /// Writes `text` to stderr as it is, unbuffered (so it shows before a crash or an exit).
  static func writeStandardError(_ text: String) {
    Array(text.utf8).withUnsafeBytes { bytes in _ = try? FileDescriptor.standardError.write(bytes) }
  }
}

enum RealmRunVersion {
  static let current = "0.1.0"
}
