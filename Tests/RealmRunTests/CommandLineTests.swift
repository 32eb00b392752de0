import ArgumentParser
import FirmwareCore
import Foundation
import Platform
import Testing
import TestSupport
import VirtIO
@testable import RealmVMM
@testable import realm_run

@Suite struct MemorySizeTests {
  static let mebibyte: UInt64 = 1 << 20
  static let valid: [(String, UInt64)] = [
    ("256", 256 * mebibyte), ("256M", 256 * mebibyte), ("256m", 256 * mebibyte), ("1G", 1024 * mebibyte),
    ("2g", 2048 * mebibyte), ("512K", 512 * 1024), ("1T", 1024 * 1024 * mebibyte), ("64MiB", 64 * mebibyte),
    ("64MB", 64 * mebibyte), ("0", 0),
  ]

  @Test(arguments: valid)
  func parses(text: String, bytes: UInt64) throws {
    #expect(try MemorySize(parsing: text).bytes == bytes)
  }

  @Test(arguments: ["", "12Q", "M", "-1", "1.5G", "256 M", "99999999999999999999", "20000000T", "1GG"])
  func rejects(text: String) {
    #expect(throws: MemorySize.ParseError.self) { try MemorySize(parsing: text) }
  }
}

@Suite struct RunOptionTests {
  func parse(_ arguments: [String]) throws -> RunCommand {
    try RunCommand.parse(arguments)
  }

  func usageError(_ arguments: [String]) -> String? {
    do {
      _ = try RunCommand.parse(arguments)
      return nil
    } catch {
      #expect(RunCommand.exitCode(for: error) == .validationFailure)
      return RunCommand.message(for: error)
    }
  }

  @Test func defaults() throws {
    let command = try parse(["--kernel", "Image"])
    #expect(command.realm)
    #expect(command.cpus == 1)
    let config = try command.makeConfig()
    #expect(config.memorySize == 256 << 20)
    #expect(config.boot == .kernel(path: "Image", initrd: nil))
    #expect(config.realm)
  }

  /// A Realm gets a virtio-rng device unless --no-rng; a normal VM only with --rng.
  @Test func entropyDevice() throws {
    #expect(try parse(["--kernel", "Image"]).makeConfig().entropy)
    #expect(try !parse(["--kernel", "Image", "--no-rng"]).makeConfig().entropy)
    #expect(try !parse(["--kernel", "Image", "--no-realm"]).makeConfig().entropy)
    #expect(try parse(["--kernel", "Image", "--no-realm", "--rng"]).makeConfig().entropy)
  }

  /// `--share DIR[,tag=TAG][,ro]`: tags default to share0, share1, ...; bad values are refused.
  @Test func shares() throws {
    let config = try parse(["--kernel", "Image", "--share", "/srv/a", "--share", "/srv/b,ro,tag=results", "--share", "c"]).makeConfig()
    #expect(config.shares == [
      ShareConfig(path: "/srv/a", tag: "share0"), ShareConfig(path: "/srv/b", tag: "results", readOnly: true),
      ShareConfig(path: "c", tag: "share2"),
    ])
    #expect(usageError(["--kernel", "Image", "--share", ",ro"]) == "--share needs a directory (DIR[,tag=TAG][,ro])")
    #expect(usageError(["--kernel", "Image", "--share", "d,rw"]) == "--share d,rw: unknown option 'rw' (known: tag=TAG, ro)")
    #expect(usageError(["--kernel", "Image", "--share", "d,tag="]) == "--share d,tag=: a tag is 1 to 255 bytes, without commas")
    #expect(
      usageError(["--kernel", "Image", "--share", "d,tag=x", "--share", "e,tag=x"])
        == "--share e,tag=x: the tag 'x' is already used by another --share")
  }

  /// `--net tap=NAME[,mac=MAC]` and `--net user[,hostfwd=RULE]...`: a stable default MAC per
  /// backend and position; bad values refused.
  @Test func networks() throws {
    let config = try parse(["--kernel", "Image", "--net", "tap=tap0", "--net", "tap=tap1,mac=52:54:00:aa:bb:cc"]).makeConfig()
    #expect(config.networks.map(\.backend) == [.tap("tap0"), .tap("tap1")])
    #expect(config.networks[1].mac == [0x52, 0x54, 0, 0xAA, 0xBB, 0xCC])
    let mac = config.networks[0].mac
    #expect(mac.prefix(3) == [0x52, 0x54, 0])
    #expect(try parse(["--kernel", "Image", "--net", "tap=tap0"]).makeConfig().networks[0].mac == mac)
    #expect(try parse(["--kernel", "Image", "--net", "tap=tap9"]).makeConfig().networks[0].mac != mac)
    let user = try parse([
      "--kernel", "Image", "--net", "user", "--net", "user,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-10.0.2.16:53",
    ]).makeConfig()
    #expect(user.networks.map(\.backend) == [
      .user(forwards: []),
      .user(forwards: [
        .init(hostPort: 8080, guestPort: 80), .init(udp: true, hostAddress: [127, 0, 0, 1], hostPort: 5353, guestAddress: [10, 0, 2, 16], guestPort: 53),
      ]),
    ])
    #expect(user.networks[0].mac != user.networks[1].mac)
    #expect(user.networks[0].mac != mac)
    #expect(usageError(["--kernel", "Image", "--net", "user,hostfwd=8080:80"]) == "--net user,hostfwd=8080:80: hostfwd= takes [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (tcp::8080-:80)")
    #expect(usageError(["--kernel", "Image", "--net", "tap=t,hostfwd=tcp::1-:2"])?.hasSuffix("'hostfwd=tcp::1-:2' is not understood") == true)
    #expect(usageError(["--kernel", "Image", "--net", "tap="]) == "--net tap=: a tap name is 1 to 15 bytes, without '/'")
    #expect(usageError(["--kernel", "Image", "--net", "tap=t,mac=01:00:00:00:00:01"]) == "--net tap=t,mac=01:00:00:00:00:01: mac= takes six hex bytes of a unicast address (52:54:00:12:34:56)")
    #expect(usageError(["--kernel", "Image", "--net", "bridge=br0"]) == "--net bridge=br0: expected \(NetConfig.syntax); 'bridge=br0' is not understood")
    #expect(usageError(["--kernel", "Image", "--net", "tap=a", "--net", "tap=a"]) == "--net tap=a: that tap is already used by another --net")
  }

  /// `--measurement-algo` takes FirmwareCore's algorithm names, as it did when it had its own enum.
  @Test func measurementAlgorithm() throws {
    #expect(try parse(["--kernel", "Image"]).makeConfig().realmOptions.algorithm == .sha256)
    #expect(try parse(["--kernel", "Image", "--measurement-algo", "sha512"]).makeConfig().realmOptions.algorithm == .sha512)
    #expect(
      usageError(["--kernel", "Image", "--measurement-algo", "sha384"])
        == "The value 'sha384' is invalid for '--measurement-algo <algorithm>'. Please provide one of 'sha256' and 'sha512'.")
  }

  @Test func fullCommandLine() throws {
    let command = try parse([
      "-m", "1G", "-c", "4", "--kernel", "Image", "--initrd", "initrd.gz", "--params", "quiet",
      "--disk", "a.img", "--disk", "b.img,ro,direct", "--no-realm", "--timeout", "30",
      "--console-log", "log.txt", "--dump-dtb", "out.dtb", "--log-level", "debug",
    ])
    let config = try command.makeConfig()
    #expect(config.memorySize == 1 << 30)
    #expect(config.cpus == 4)
    #expect(config.boot == .kernel(path: "Image", initrd: "initrd.gz"))
    #expect(config.kernelParameters == "quiet")
    #expect(config.disks == [DiskConfig(path: "a.img"), DiskConfig(path: "b.img", readOnly: true, direct: true)])
    #expect(!config.realm)
    #expect(command.timeout == 30)
    #expect(command.logLevel == .debug)
  }

  @Test func firmwareBoot() throws {
    let config = try parse(["--firmware", "fw.bin", "--disk", "d.img"]).makeConfig()
    #expect(config.boot == .firmware(path: "fw.bin"))
    #expect(config.bootEntry == nil && config.sveVectorLength == nil)
    let chosen = try parse(["--firmware", "fw.bin", "--disk", "d.img", "--boot-entry", "rescue", "--sve-vl", "256"]).makeConfig()
    #expect(chosen.bootEntry == "rescue")
    #expect(chosen.sveVectorLength == 256)
    #expect(!chosen.pmu)
    #expect(chosen.bootMode == .automatic)
    for (name, mode) in [("auto", FirmwareBootMode.automatic), ("efi", .efi), ("bls", .bls)] {
      #expect(try parse(["--firmware", "fw.bin", "--disk", "d.img", "--boot-mode", name]).makeConfig().bootMode == mode)
    }
    let pmu = try parse(["--kernel", "k", "--pmu-counters", "3"]).makeConfig()
    #expect(pmu.pmu && pmu.pmuCounters == 3)
  }

  @Test func badInputIsAUsageError() {
    #expect(usageError(["-m", "0", "--kernel", "k"])?.contains("at least 16 MiB") == true)
    #expect(usageError(["-m", "12Q", "--kernel", "k"])?.contains("not a memory size") == true)
    #expect(usageError(["-m", "1000K", "--kernel", "k"]) != nil)
    #expect(usageError(["-c", "0", "--kernel", "k"])?.contains("--cpus") == true)
    #expect(usageError(["-c", "1000", "--kernel", "k"]) != nil)
    #expect(usageError(["--kernel", "k", "--firmware", "f"]) != nil)
    #expect(usageError(["--initrd", "i", "--disk", "d"])?.contains("--initrd needs --kernel") == true)
    #expect(usageError(["--kernel", "k", "--timeout", "0"]) != nil)
    #expect(usageError(["--kernel", "k", "--timeout", "-5"]) != nil)
    #expect(usageError(["--disk", "d.img,bogus"])?.contains("unknown option 'bogus'") == true)
    #expect(usageError(["--disk", ",ro"]) != nil)
    #expect(usageError([])?.contains("nothing to boot") == true)
    #expect(usageError(["--kernel", "k", "--log-level", "loud"]) != nil)
    #expect(usageError(["--kernel", "k", "--frobnicate"]) != nil)
    #expect(usageError(["--kernel", "k", "--sve-vl", "100"])?.contains("multiple of 128") == true)
    #expect(usageError(["--kernel", "k", "--sve-vl", "4096"]) != nil)
    #expect(usageError(["--kernel", "k", "--boot-entry", "rescue"])?.contains("drop --kernel") == true)
    #expect(usageError(["--disk", "d.img", "--boot-entry", "../x"]) != nil)
    #expect(usageError(["--disk", "d.img", "--boot-mode", "uefi"]) != nil)
    #expect(usageError(["--kernel", "k", "--boot-mode", "efi"])?.contains("drop --kernel") == true)
    #expect(usageError(["--kernel", "k", "--pmu-counters", "32"])?.contains("from 0 to 31") == true)
    // A negative number is a bad value, not a missing one.
    #expect(usageError(["-m", "-5", "--kernel", "k"])?.contains("'-5' is not a memory size") == true)
    #expect(usageError(["-c", "-1", "--kernel", "k"])?.contains("--cpus -1") == true)
    // A command line the kernel would cut is refused, with the limit named.
    let long = String(repeating: "a", count: 2040)
    #expect(usageError(["--kernel", "k", "--params", long])?.contains("at most 2047 bytes of command line") == true)
    #expect(usageError(["--kernel", "k", "--params", String(long.prefix(2030))]) == nil)
  }

  @Test func consolePatterns() throws {
    let command = try parse(["--kernel", "k", "--until", "^login:", "--fail-on", "Kernel panic|Oops"])
    let watch = try #require(try command.lineWatch())
    #expect(watch.until?.source == "^login:" && watch.failOn?.source == "Kernel panic|Oops")
    #expect(try parse(["--kernel", "k"]).lineWatch() == nil)
    #expect(usageError(["--kernel", "k", "--until", "(oops"])?.contains("--until: '(oops' is not an extended regular expression") == true)
    #expect(usageError(["--kernel", "k", "--fail-on", "a{2,1}"])?.contains("--fail-on:") == true)
    #expect(ExitStatus(.consoleMatched("login:")).rawValue == 0)
    #expect(ExitStatus(.consoleFailure("Oops")).rawValue == 5)
    #expect(RunCommand.message(for: .consoleFailure("[ 2.1] Kernel panic"), timeout: nil)
      == "a console line matched --fail-on: [ 2.1] Kernel panic")
  }

  @Test func helpForAnUnknownSubcommandIsAnError() {
    #expect(RealmRun.unknownHelpTopic(["help", "bogus"]) == "help: no subcommand 'bogus' (there are: run, image, measure, verify, host-info)")
    #expect(RealmRun.unknownHelpTopic(["help", "image", "create"]) == nil)
    #expect(RealmRun.unknownHelpTopic(["help"]) == nil)
    #expect(RealmRun.unknownHelpTopic(["--kernel", "help"]) == nil)
  }

  @Test func measureRefusesDisksThatCannotBeOpened() throws {
    for (disk, message) in [("/nonexistent/d.img", "disk image /nonexistent/d.img does not exist"),
                            ("/tmp", "disk image /tmp is not a regular file or block device")] {
      #expect(throws: BlockFileError.self) { try BlockFile.check(path: disk) }
      do {
        try BlockFile.check(path: disk)
      } catch {
        #expect(error.description == message)
      }
      // Checked before any RIM is computed (the kernel here does not even exist).
      #expect(throws: ExitStatus.vmmError) { try MeasureCommand.parse(["--kernel", "/nonexistent/k", "--disk", disk]).run() }
    }
  }
}

@Suite struct ExitStatusTests {
  @Test func outcomesMapToDocumentedStatuses() {
    #expect(ExitStatus(.poweredOff).rawValue == 0)
    #expect(ExitStatus(.reset).rawValue == 2)
    #expect(ExitStatus(.crashed("x")).rawValue == 3)
    #expect(ExitStatus(.firmwareFailed(code: 1, reason: "x")).rawValue == 4)
    #expect(ExitStatus(.timedOut).rawValue == 124)
    #expect(ExitStatus(.quit).rawValue == 130)
    #expect(ExitStatus(.signalled(SIGINT)).rawValue == 130)
    #expect(ExitStatus(.signalled(SIGHUP)).rawValue == 129)
    #expect(ExitStatus(.signalled(SIGTERM)).rawValue == 143)
    #expect(ExitStatus.vmmError.rawValue == 1)
    #expect(ExitStatus.usage.rawValue == 64)
  }

  /// The one stderr line after a run (realm-run prefixes it with "realm-run: ").
  @Test func aFirmwareFailureIsOneLineWithItsReason() {
    #expect(RunCommand.message(for: .firmwareFailed(code: 1, reason: "partition table: no GPT signature"), timeout: nil)
      == "the firmware could not boot: partition table: no GPT signature")
    #expect(RunCommand.message(for: .firmwareFailed(code: 7, reason: ""), timeout: nil)
      == "the firmware could not boot: failure code 7, no reason given")
    #expect(RunCommand.message(for: .poweredOff, timeout: nil) == nil)
    #expect(RunCommand.message(for: .signalled(SIGTERM), timeout: nil)
      == "stopped by SIGTERM; the guest was stopped and its disks flushed")
    #expect(RunCommand.message(for: .timedOut, timeout: 5)?.contains("within 5 s") == true)
  }

  @Test func everyStatusIsDocumented() {
    let help = RealmRun.helpMessage()
    for status in ExitStatus.allCases {
      #expect(help.contains("  \(status.rawValue) "), "exit status \(status.rawValue) missing from the help text")
    }
  }
}

@Suite struct BundledFirmwareTests {
  @Test func looksNextToTheExecutableThenInShare() {
    #expect(BundledFirmware.candidates(executable: "/usr/local/bin/realm-run") == [
      "/usr/local/bin/realm-fw.bin", "/usr/local/share/realm-run/realm-fw.bin",
    ])
  }
}

@Suite struct ImageCreateTests {
  typealias Scratch = ScratchDirectory

  @Test func existingOutputNeedsForce() throws {
    let s = Scratch()
    let k = s.kernel
    let out = s.file("disk.img", [1, 2, 3])
    var create = try ImageCommand.Create.parse(["--kernel", k, "-o", out])
    #expect(throws: ExitStatus.vmmError) { try create.run() }
    let kept = s.read("disk.img") == [1, 2, 3]  // a Bool: a failed array == would diff 65 MiB
    #expect(kept, "disk.img was replaced without --force")
    create = try ImageCommand.Create.parse(["--kernel", k, "-o", out, "--force"])
    try create.run()
    #expect(s.read("disk.img").count > 1 << 20)
  }

  @Test func progressShowsOnATerminalForLargeCopiesOnly() {
    var lines: [String] = []
    let total = CopyProgress.threshold * 2
    var shown = CopyProgress(isTerminal: true) { lines.append($0) }
    for copied in stride(from: 0, through: total, by: Int(total / 4)) { shown.update(copied: UInt64(copied), total: total) }
    #expect(lines == ["\rcopying rootfs: 0/512 MiB", "\rcopying rootfs: 128/512 MiB", "\rcopying rootfs: 256/512 MiB",
                      "\rcopying rootfs: 384/512 MiB", "\rcopying rootfs: 512/512 MiB", "\n"])
    lines = []
    var piped = CopyProgress(isTerminal: false) { lines.append($0) }
    piped.update(copied: total, total: total)
    var small = CopyProgress(isTerminal: true) { lines.append($0) }
    small.update(copied: 1 << 20, total: 1 << 20)
    small.endLine()
    #expect(lines == [])
  }
}

extension ScratchDirectory {
  /// A file in the directory that passes for an arm64 Image.
  var kernel: String {
    var k = [UInt8](repeating: 0, count: 4096)
    k.replaceSubrange(16..<24, with: [0, 0x10, 0, 0, 0, 0, 0, 0])  // image_size 4096
    k.replaceSubrange(56..<60, with: [0x41, 0x52, 0x4D, 0x64])  // "ARM\x64"
    return file("Image", k)
  }
}
