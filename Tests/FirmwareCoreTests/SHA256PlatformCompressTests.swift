import Crypto
@testable import FirmwareCore
import Testing

/// The test's message (start and end addresses) and how many of its blocks the platform function
/// was handed: a C function pointer captures nothing. Other suites hash at the same time, through
/// the same function; only blocks read from this message count.
nonisolated(unsafe) private var message: (start: UInt, end: UInt) = (0, 0)
nonisolated(unsafe) private var messageBlocks = 0

/// `SHA256.platformCompress` (the firmware's ARMv8 instructions) gets every whole block of the
/// caller's bytes, in place, and the digests stay right: here with the Swift compression behind it.
@Suite(.serialized) struct SHA256PlatformCompressTests {
  @Test func wholeBlocksGoToThePlatformFunction() {
    FirmwareCore.SHA256.platformCompress = { state, data, blocks, k in
      let address = UInt(bitPattern: data)
      if address >= message.start && address < message.end { messageBlocks += blocks }
      guard let state, let data, let k, k[0] == 0x428a_2f98, k[63] == 0xc671_78f2 else { return }
      var words: FirmwareCore.SHA256.State = (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7])
      FirmwareCore.SHA256.compress(&words, data, blocks: blocks)
      (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7]) = words
    }
    defer { FirmwareCore.SHA256.platformCompress = nil }
    for length in [0, 1, 55, 56, 63, 64, 65, 1000, 100_003] {
      let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
      let digest = bytes.withUnsafeBytes { raw in
        message = (UInt(bitPattern: raw.baseAddress), UInt(bitPattern: raw.baseAddress) + UInt(raw.count))
        messageBlocks = 0
        return FirmwareCore.SHA256.hash(raw)
      }
      #expect(digest == Array(Crypto.SHA256.hash(data: bytes)), "length \(length)")
      #expect(messageBlocks == length / 64, "length \(length)")
    }
  }
}
