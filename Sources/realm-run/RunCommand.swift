import ArgumentParser
import Dispatch
import FirmwareCore
import KVM
import Logging
import Platform
import RealmVMM

/// `realm-run [run]`: builds a machine from the options and runs it to the end.
struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Run a machine (the default when no subcommand is given).",
    discussion: """
      Boots the bundled firmware (which loads Linux from --disk), other firmware (--firmware), \
      or a Linux arm64 Image directly (--kernel). The guest's console is streamed to standard \
      output; on a terminal, input goes to the guest and Ctrl-A x quits.
      """)

  /// The machine: RAM, vCPUs, what to boot, disks, Realm and console options.
  @OptionGroup var machine: MachineOptions

  @Option(help: ArgumentHelp("Stop the guest after this many seconds (exit status 124).", valueName: "seconds"))
  var timeout: Double?

  @Option(help: ArgumentHelp(
    "End the run when a console line matches this extended regular expression (grep -E): the guest is stopped and realm-run exits 0.",
    valueName: "regex"))
  var until: String?

  @Option(help: ArgumentHelp(
    "End the run when a console line matches this extended regular expression, with exit status 5 and the line on stderr (e.g. 'Kernel panic|Oops').",
    valueName: "regex"))
  var failOn: String?

  @Option(help: ArgumentHelp("Also write the guest's console output to this file.", valueName: "file"))
  var consoleLog: String?

  @Option(help: ArgumentHelp("Write the device tree given to the guest to this file (replaced; never one of the machine's files).", valueName: "file"))
  var dumpDtb: String?

  @Option(help: ArgumentHelp("Log level on stderr.", valueName: "level"))
  var logLevel: LogLevelArgument = .warning

  @Flag(help: "Print the Realm's predicted initial measurement (RIM) on stderr at launch, with the rules of this host's CCA generation (see 'realm-run measure').")
  var printRim: Bool = false

  @Option(help: ArgumentHelp(
    "Write the Realm's launch measurement log to this file: every command the RMM measured, in order, as a TCG event log a verifier replays to the RIM (see 'realm-run measure').",
    valueName: "file"))
  var measurementLog: String?

  func validate() throws {
    // MachineOptions.validate() checks the machine options.
    if let timeout, !(timeout > 0 && timeout.isFinite) {
      throw ValidationError("--timeout must be a positive number of seconds")
    }
    for (flag, pattern) in [("--until", until), ("--fail-on", failOn)] {
      guard let pattern else { continue }
      do {
        _ = try ConsolePattern(pattern)
      } catch {
        throw ValidationError("\(flag): \(error.description)")
      }
    }
    if printRim && !machine.realm {
      throw ValidationError("--print-rim is for Realms; drop --no-realm")
    }
    if measurementLog != nil && !machine.realm {
      throw ValidationError("--measurement-log is for Realms; drop --no-realm")
    }
  }

  func run() throws {
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = logLevel.level
      return handler
    }
    let logger = Logger(label: "realm-run")
    // Before any thread starts: SIGINT, SIGTERM and SIGHUP stop a running guest cleanly (see
    // TerminationSignals); before the run they end realm-run at once, terminal restored.
    TerminationSignals.block { number in
      TerminalMode.restore()
      RealmRun.report("stopped by \(TerminationSignals.name(number))")
      Platform.exit(ExitStatus(signal: number).rawValue)
    }
    do {
      let config = try makeConfig()
      let prediction = (printRim || measurementLog != nil) && config.realm
        ? LaunchPrediction(config, printRIM: printRim, log: measurementLog.map { OutputFile(path: $0, option: "--measurement-log") })
        : nil
      let console = try TerminalConsole(logPath: consoleLog)
      let machine = try Machine(config: config, console: console, logger: logger)
      try prediction?.report()
      if let dumpDtb {
        try OutputFile(path: dumpDtb, option: "--dump-dtb").write(machine.deviceTreeBlob, inputs: config.inputFiles, replace: true)
      }
      let outcome = try machine.run(timeout: timeout, lines: try lineWatch())
      var usage = rusage()
      if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
        logger.info("peak RSS \(usage.ru_maxrss / 1024) MiB (\(usage.ru_maxrss) KiB)")
      }
      if let message = Self.message(for: outcome, timeout: timeout) { RealmRun.report(message) }
      throw ExitStatus(outcome)
    } catch let error as VMMError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    } catch let error as OutputFileError {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    }
  }

  /// The one stderr line (without the "realm-run: " prefix) for how a run ended, if it needs one.
  static func message(for outcome: Outcome, timeout: Double?) -> String? {
    switch outcome {
    case .timedOut:
      return "the guest did not finish within \(formatted(timeout ?? 0)) s (--timeout); stopped it"
    case .crashed(let why):
      return "guest crashed: \(why)"
    case .reset:
      return "the guest asked for a reset; not restarting it"
    case .firmwareFailed(let code, let reason):
      return "the firmware could not boot: " + (reason.isEmpty ? "failure code \(code), no reason given" : reason)
    case .consoleFailure(let line):
      return "a console line matched --fail-on: \(line)"
    case .consoleMatched:
      return nil
    case .signalled(let number):
      return "stopped by \(TerminationSignals.name(number)); the guest was stopped and its disks flushed"
    case .poweredOff, .quit:
      return nil
    }
  }

  /// What `--until` and `--fail-on` watch for (both checked by validate()).
  func lineWatch() throws -> ConsoleLineWatch? {
    guard until != nil || failOn != nil else { return nil }
    return ConsoleLineWatch(until: try until.map(ConsolePattern.init), failOn: try failOn.map(ConsolePattern.init))
  }

  /// The machine configuration the options describe (files are checked when the machine is built).
  func makeConfig() throws(VMMError) -> MachineConfig {
    try machine.makeConfig()
  }

  /// `--realm` (kept here for callers of the command's properties).
  var realm: Bool { machine.realm }
  /// `--cpus`.
  var cpus: Int { machine.cpus }

  private static func formatted(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
  }
}

/// `--measurement-algo` values: the names of the algorithms.
extension RealmHashAlgorithm: ExpressibleByArgument {}

/// `--console` values.
enum ConsoleArgument: String, ExpressibleByArgument, CaseIterable {
  case serial, virtio

  var console: MachineConfig.Console { self == .serial ? .serial : .virtio }
}

/// `--log-level` values (swift-log's levels).
enum LogLevelArgument: String, ExpressibleByArgument, CaseIterable {
  case trace, debug, info, notice, warning, error, critical

  var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .warning }
}

/// `--print-rim` and `--measurement-log`: the RIM `realm-run measure --from-host` would print and
/// the log of the commands that give it, worked out on another thread while the machine is built.
/// A Realm's measured populate takes seconds; hashing the same mapped bytes beside it, granule by
/// granule, adds neither a copy of them nor time of its own.
private final class LaunchPrediction: @unchecked Sendable {
  private var lines: [String] = []
  /// Whether the log could not be written (the run then stops: the user asked for it).
  private var failed = false
  private let done = DispatchSemaphore(value: 0)

  init(_ config: MachineConfig, printRIM: Bool, log: OutputFile?) {
    DispatchQueue.global().async { [self] in
      do {
        let prediction = try RIMPrediction(config: config, hostSeries: config.realmOptions.series)
        if printRIM { lines.append("predicted RIM " + prediction.rim.hex) }
        if let log {
          do {
            try log.write(try prediction.launchLog().encoded(), inputs: config.inputFiles, replace: true)
          } catch let error as OutputFileError {
            lines.append(error.description)
            failed = true
          }
        }
      } catch {
        lines.append("cannot predict the RIM: \(error)")
        failed = log != nil
      }
      done.signal()
    }
  }

  /// Waits for the prediction and reports it, a line on stderr each; throws (exit status 1) when
  /// the log asked for was not written.
  func report() throws(ExitStatus) {
    done.wait()
    for line in lines { RealmRun.report(line) }
    if failed { throw .vmmError }
  }
}
