import FirmwareCore
import Foundation
import TestSupport
import Testing
@testable import RealmVMM
@testable import realm_run

/// `measure`'s reference values: the REMs per boot path, the RPV, and the --corim file.
@Suite struct MeasureReferenceValuesTests {
  /// A 9000-byte arm64 Image (image_size 1 MiB, 4 KiB pages, little-endian).
  static func kernel(_ scratch: ScratchDirectory) -> String {
    var image = [UInt8](repeating: 0x42, count: 9000)
    func put(_ value: UInt64, _ offset: Int, _ count: Int) {
      for index in 0..<count { image[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
    }
    put(0, 8, 8)
    put(0x10_0000, 16, 8)
    put(0b1010, 24, 8)
    put(UInt64(ArmImageHeader.magic), 56, 4)
    return scratch.file("Image", image)
  }

  static func rems(_ arguments: [String]) throws -> [[UInt8]?] {
    let command = try MeasureCommand.parse(arguments)
    let config = try command.machine.makeConfig()
    let prediction = try RIMPrediction(config: config, profile: .emulatedV13, algorithmOverride: nil)
    return command.predictedREMs(config, prediction)
  }

  @Test func directBootLeavesTheREMsZero() throws {
    let scratch = ScratchDirectory()
    #expect(try Self.rems(["--kernel", Self.kernel(scratch)]) == [[UInt8]?](repeating: [UInt8](repeating: 0, count: 32), count: 4))
    #expect(try Self.rems(["--kernel", Self.kernel(scratch), "--measurement-algo", "sha512"])
      == [[UInt8]?](repeating: [UInt8](repeating: 0, count: 64), count: 4))
  }

  /// Another firmware's measured boot is not measure's to predict.
  @Test func customFirmwareLeavesTheREMsUnknown() throws {
    let scratch = ScratchDirectory()
    let firmware = scratch.file("other-fw.bin", [UInt8](repeating: 1, count: 8192))
    let disk = scratch.file("disk.img", [UInt8](repeating: 0, count: 1 << 20))
    #expect(try Self.rems(["--firmware", firmware, "--disk", disk]) == [nil, nil, nil, nil])
  }

  @Test func corimIsWrittenOnceUnlessForced() throws {
    let scratch = ScratchDirectory()
    let kernel = Self.kernel(scratch)
    let out = scratch.path + "/values.corim"
    try MeasureCommand.parse(["--kernel", kernel, "--realm-pv", "abc", "--corim", out]).run()
    let first = scratch.read("values.corim")
    #expect(Array(first.prefix(3)) == [0xD9, 0x01, 0xF5])
    // the RPV as the file carries it: 560(64 bytes, "abc" then zeros)
    let rpv = Array("abc".utf8) + [UInt8](repeating: 0, count: 61)
    let tagged: [UInt8] = [0xD9, 0x02, 0x30, 0x58, 0x40] + rpv
    #expect(first.count >= tagged.count && (0...(first.count - tagged.count)).contains { Array(first[$0..<$0 + tagged.count]) == tagged })
    _ = scratch.file("values.corim", [1, 2, 3])
    #expect(throws: ExitStatus.vmmError) { try MeasureCommand.parse(["--kernel", kernel, "--corim", out]).run() }
    #expect(scratch.read("values.corim") == [1, 2, 3])
    try MeasureCommand.parse(["--kernel", kernel, "--realm-pv", "abc", "--corim", out, "--force"]).run()
    #expect(scratch.read("values.corim") == first)
  }

  /// Not even --force writes over one of the machine's own files; nothing is left beside it.
  @Test func corimNeverReplacesAnInput() throws {
    let scratch = ScratchDirectory()
    let kernel = Self.kernel(scratch)
    let before = scratch.read("Image")
    #expect(throws: ExitStatus.vmmError) { try MeasureCommand.parse(["--kernel", kernel, "--corim", kernel, "--force"]).run() }
    #expect(scratch.read("Image") == before)
    let left = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
    #expect(left == ["Image"])
  }

  @Test func corimOptionsNeedCorim() {
    #expect(throws: (any Error).self) { try MeasureCommand.parse(["--kernel", "k", "--force"]) }
    #expect(throws: (any Error).self) { try MeasureCommand.parse(["--kernel", "k", "--corim-layout", "legacy"]) }
  }
}
