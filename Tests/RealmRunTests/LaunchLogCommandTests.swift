import FirmwareCore
import Foundation
import RealmMeasurement
import TestSupport
import Testing
@testable import RealmVMM
@testable import realm_run

/// `--measurement-log` on measure and run, and its replay by verify.
@Suite struct LaunchLogCommandTests {
  /// measure's log reads back; replayed with the kernel (the DTB comes from the log) it gives the
  /// RIM measure printed, for the RMM 2.0 and the RMM 1.0 rules; without the kernel it cannot be.
  @Test(arguments: ["v13", "v12"])
  func measureWritesAReplayableLog(series: String) throws {
    let scratch = ScratchDirectory()
    let kernel = MeasureReferenceValuesTests.kernel(scratch)
    let arguments = ["--kernel", kernel, "-m", "64M", "--cca-abi", series]
    let config = try MeasureCommand.parse(arguments).machine.makeConfig()
    let prediction = try RIMPrediction(config: config, profile: .defaults(for: config.realmOptions.series), algorithmOverride: nil)
    try MeasureCommand.parse(arguments + ["--measurement-log", scratch.path + "/launch.log"]).run()
    let log = try RealmLaunchLog(decoding: scratch.read("launch.log"))
    #expect(log.deviceTree == Array(prediction.deviceTree.prefix(log.deviceTree?.count ?? 0)))
    #expect(try log.replay(images: [scratch.read("Image")]).digest == prediction.rim.digest)
    #expect(throws: LaunchLogError.self) { try log.replay(images: []) }
  }

  /// The log file follows the output rules: an existing file only with --force, never an input.
  @Test func logIsWrittenOnceUnlessForced() throws {
    let scratch = ScratchDirectory()
    let kernel = MeasureReferenceValuesTests.kernel(scratch)
    _ = scratch.file("launch.log", [1, 2, 3])
    let out = scratch.path + "/launch.log"
    #expect(throws: ExitStatus.vmmError) { try MeasureCommand.parse(["--kernel", kernel, "--measurement-log", out]).run() }
    #expect(scratch.read("launch.log") == [1, 2, 3])
    try MeasureCommand.parse(["--kernel", kernel, "--measurement-log", out, "--force"]).run()
    #expect(try RealmLaunchLog(decoding: scratch.read("launch.log")).events.count == 4)  // REALM_CREATE, 2 images, REC
    let before = scratch.read("Image")
    #expect(throws: ExitStatus.vmmError) { try MeasureCommand.parse(["--kernel", kernel, "--measurement-log", kernel, "--force"]).run() }
    #expect(scratch.read("Image") == before)
  }

  @Test func optionsThatGoTogether() {
    #expect(throws: (any Error).self) { try RunCommand.parse(["--no-realm", "--kernel", "k", "--measurement-log", "l"]) }
    #expect(throws: (any Error).self) { try VerifyCommand.parse(["t", "--image", "k"]) }
    #expect(throws: (any Error).self) { try VerifyCommand.parse(["t", "--measurement-log", "l", "--rim", String(repeating: "ab", count: 32)]) }
    #expect(throws: Never.self) { try VerifyCommand.parse(["t", "--measurement-log", "l", "--image", "k", "--image", "i"]) }
  }
}
