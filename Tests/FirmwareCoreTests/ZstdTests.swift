import FirmwareCore
import Foundation
import Testing
import TestSupport

/// FirmwareCore's Zstandard decoder against what the zstd CLI writes (Scripts/setup-host installs
/// it; without it these tests are skipped, or fail under `REALM_RUN_REQUIRE_ASSETS=1`), its XXH64
/// against published values, and corrupt input of every kind.
@Suite struct ZstdTests {
  // MARK: helpers

  /// `data` compressed by the zstd CLI with `options`, or nil when zstd is not installed.
  static func compress(_ data: [UInt8], _ options: [String]) -> [UInt8]? {
    let scratch = ScratchDirectory()
    let input = scratch.file("in", data)
    guard runToolSucceeding("zstd", ["-q", "-f"] + options + [input, "-o", scratch.path("out.zst")]) != nil else {
      return nil
    }
    return scratch.read("out.zst")
  }

  /// Decompresses `input` into a buffer of `capacity` bytes.
  static func decompress(_ input: [UInt8], capacity: Int) throws(ZstdError) -> [UInt8] {
    var output = [UInt8](repeating: 0, count: capacity)
    let written: Result<Int, ZstdError> = input.withUnsafeBytes { raw in
      output.withUnsafeMutableBytes { out in Result { () throws(ZstdError) in try Zstd.decompress(raw, into: out) } }
    }
    return Array(output[0..<(try written.get())])
  }

  /// The error decompressing `input` gives, or nil when it decompresses.
  static func error(_ input: [UInt8], capacity: Int) -> ZstdError? {
    do {
      _ = try decompress(input, capacity: capacity)
      return nil
    } catch {
      return error
    }
  }

  static func contentSize(_ input: [UInt8]) throws(ZstdError) -> UInt64? {
    let size: Result<UInt64?, ZstdError> = input.withUnsafeBytes { raw in
      Result { () throws(ZstdError) in try Zstd.frameContentSize(raw) }
    }
    return try size.get()
  }

  /// The block types (0 raw, 1 RLE, 2 compressed) of a single frame, read from its block headers.
  static func blockTypes(_ frame: [UInt8]) -> [Int] {
    let descriptor = Int(frame[4])
    let single = descriptor & 0x20 != 0
    let fcsFlag = descriptor >> 6
    var p = 5 + (single ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]
      + (fcsFlag == 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag])
    var types: [Int] = []
    while let header = frame.unsignedInteger(at: p, width: 3) {
      let type = Int(header >> 1) & 3
      types.append(type)
      p += 3 + (type == 1 ? 1 : Int(header >> 3))
      if header & 1 != 0 { break }
    }
    return types
  }

  /// About `count` bytes of text: this file's own source, repeated with a line number, so that
  /// the compressor finds both long and short matches and Huffman-codes the literals.
  static func text(count: Int) -> [UInt8] {
    let source = Array(((try? String(contentsOfFile: #filePath, encoding: .utf8)) ?? "zstd test text\n").utf8)
    var out: [UInt8] = []
    var line = 0
    while out.count < count {
      out += Array("\(line) ".utf8) + source[(line * 37 % source.count)...].prefix(200)
      line += 1
    }
    return Array(out.prefix(count))
  }

  static func random(count: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
  }

  /// A hand-made frame: single segment, one-byte content size, the given blocks (headers and
  /// contents), no checksum, optional one-byte dictionary id.
  static func frame(contentSize: UInt8, dictionaryID: UInt8? = nil, descriptorBits: UInt8 = 0, blocks: [UInt8])
    -> [UInt8]
  {
    var f: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x20 | descriptorBits | (dictionaryID == nil ? 0 : 1)]
    if let dictionaryID { f.append(dictionaryID) }
    return f + [contentSize] + blocks
  }

  /// A block header: last flag, type, size.
  static func blockHeader(last: Bool, type: Int, size: Int) -> [UInt8] {
    let value = (last ? 1 : 0) | type << 1 | size << 3
    return [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value >> 16)]
  }

  // MARK: XXH64

  @Test func xxh64KnownAnswers() {
    func h(_ s: String, seed: UInt64 = 0) -> UInt64 { XXH64.hash(Array(s.utf8), seed: seed) }
    #expect(h("") == 0xEF46_DB37_51D8_E999)
    #expect(h("a") == 0xD24E_C4F1_A98C_6E5B)
    #expect(h("abc") == 0x44BC_2CF5_AD77_0999)
    #expect(h("Nobody inspects the spammish repetition") == 0xFBCE_A83C_8A37_8BF1)
    #expect(h("The quick brown fox jumps over the lazy dog") == 0x0B24_2D36_1FDA_71BC)
    #expect(XXH64.hash([UInt8](repeating: 0x61, count: 32)) == 0x856E_8432_98F9_9AD7)
    #expect(XXH64.hash([UInt8](repeating: 0x62, count: 64)) == 0xECBA_F4BD_F26B_6349)
    #expect(h("abc", seed: 12345) == 0x0170_0E64_F6F2_3509)
  }

  /// Every length 0...200 (all tails of the 32-byte stripes): the low 32 bits are what zstd
  /// stores as a frame's checksum.
  @Test func xxh64MatchesZstdChecksums() throws {
    let data = Self.random(count: 200, seed: 7)
    for length in [0, 1, 3, 4, 7, 8, 15, 31, 32, 33, 63, 64, 100, 127, 128, 129, 200] {
      let slice = Array(data.prefix(length))
      guard let z = Self.compress(slice, ["--check"]) else { return }
      let stored = z.le32(at: z.count - 4)
      #expect(stored == UInt32(truncatingIfNeeded: XXH64.hash(slice)), "length \(length)")
    }
  }

  // MARK: what the zstd CLI writes

  @Test(arguments: [["-1"], ["-3"], ["-19"], ["--ultra", "-22"], ["--no-check"], ["--long=27"], ["-5", "--no-content-size"]])
  func decompressesTheCLIsOutput(_ options: [String]) throws {
    let data = Self.text(count: 700_000) + Self.random(count: 50_000, seed: 1) + [UInt8](repeating: 9, count: 300_000)
      + Self.text(count: 200_000)
    guard let z = Self.compress(data, options) else { return }
    let out = try Self.decompress(z, capacity: data.count)
    #expect(out.count == data.count)
    #expect((out == data) == true)
    let declared = try Self.contentSize(z)
    #expect(declared == (options.contains("--no-content-size") ? nil : UInt64(data.count)))
    // The frame's checksum flag follows the option: the data is verified unless --no-check.
    #expect((z[4] & 4 != 0) == !options.contains("--no-check"))
  }

  @Test func multipleFramesDecompressBackToBack() throws {
    let first = Self.text(count: 100_000)
    let second = Self.text(count: 30_000).reversed() + [1, 2, 3]
    guard let a = Self.compress(first, ["-3"]), let b = Self.compress(Array(second), ["-19", "--no-check"]) else {
      return
    }
    let out = try Self.decompress(a + b, capacity: first.count + second.count)
    #expect((out == first + second) == true)
    // A skippable frame between them is skipped.
    let skippable: [UInt8] = [0x5A, 0x2A, 0x4D, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]
    #expect((try Self.decompress(a + skippable + b, capacity: first.count + second.count) == first + second) == true)
    #expect(try Self.contentSize(skippable + b) == UInt64(second.count))
  }

  @Test func emptyAndOneByteInputs() throws {
    guard let empty = Self.compress([], []), let one = Self.compress([0x41], []) else { return }
    #expect(try Self.decompress(empty, capacity: 0) == [])
    #expect(try Self.contentSize(empty) == 0)
    #expect(try Self.decompress(one, capacity: 1) == [0x41])
    #expect(Self.error(one, capacity: 0) == .outputTooSmall)
  }

  /// One repeated byte makes RLE blocks; a short period makes overlapping matches (offset < 8).
  @Test func repetitiveDataMakesRLEBlocksAndShortMatches() throws {
    let zeros = [UInt8](repeating: 0, count: 1_000_000)
    guard let z = Self.compress(zeros, ["-3"]) else { return }
    #expect(Self.blockTypes(z).contains(1), "zstd wrote no RLE block: \(Self.blockTypes(z))")
    #expect((try Self.decompress(z, capacity: zeros.count) == zeros) == true)

    let periodic = (0..<500_000).map { UInt8([7, 1, 200, 3, 3][$0 % 5]) }
    guard let p = Self.compress(periodic, ["-19"]) else { return }
    #expect((try Self.decompress(p, capacity: periodic.count) == periodic) == true)
  }

  @Test func randomDataMakesRawBlocks() throws {
    let data = Self.random(count: 400_000, seed: 99)
    guard let z = Self.compress(data, ["-3"]) else { return }
    #expect(Self.blockTypes(z).allSatisfy { $0 == 0 }, "\(Self.blockTypes(z))")
    #expect((try Self.decompress(z, capacity: data.count) == data) == true)
  }

  /// Without a content size (as when zstd reads a pipe) and with a 128 MiB window, the output
  /// buffer needs only the data's size; one byte less is too small.
  @Test func windowLargerThanTheOutput() throws {
    let data = Self.text(count: 300_000)
    let scratch = ScratchDirectory()
    let input = scratch.file("in", data)
    guard runToolSucceeding("sh", ["-c", "zstd -q --long=27 -c < \(input) > \(scratch.path("out.zst"))"]) != nil else {
      return
    }
    let z = scratch.read("out.zst")
    #expect(try Self.contentSize(z) == nil)
    #expect(z[5] >> 3 == 17, "window log \(10 + Int(z[5] >> 3)), expected 27")
    #expect((try Self.decompress(z, capacity: data.count) == data) == true)
    #expect(Self.error(z, capacity: data.count - 1) == .outputTooSmall)
    // A declared content size larger than the output is refused before decoding.
    guard let sized = Self.compress(data, ["-3"]) else { return }
    #expect(Self.error(sized, capacity: 1000) == .outputTooSmall)
  }

  // MARK: the Debian arm64 kernel, as zboot packs it

  static let required = Arm64Assets.required

  static let kernelImage = Arm64Assets.path("KERNEL_IMAGE")

  /// Linux's Makefile.zboot: `cat Image | zstd -22 --ultra` (a pipe: no content size, 128 MiB window).
  /// The kernel's first 16 MiB keep the test quick (-22 takes a minute over all 51 MB);
  /// Scripts/firmware-qemu-test boots the whole kernel from a zstd zboot container.
  @Test(.enabled(if: kernelImage != nil || required, "no arm64 kernel (Scripts/fetch-arm64-assets)"))
  func decompressesTheKernelCompressedLikeZboot() throws {
    let path = try #require(Self.kernelImage, "the arm64 kernel is required (Scripts/fetch-arm64-assets)")
    let whole = try #require(FileManager.default.contents(atPath: path).map(Array.init), "cannot read \(path)")
    let kernel = Array(whole.prefix(16 << 20))
    let scratch = ScratchDirectory()
    guard runToolSucceeding("sh", ["-c", "head -c \(kernel.count) \(path) | zstd -q -22 --ultra > \(scratch.path("Image.zst"))"]) != nil
    else { return }
    let z = scratch.read("Image.zst")
    #expect(try Self.contentSize(z) == nil)
    #expect(z[4] & 4 != 0, "zstd wrote no checksum")
    let started = Date()
    let out = try Self.decompress(z, capacity: kernel.count + 4096)
    let seconds = Date().timeIntervalSince(started)
    #expect(out.count == kernel.count)
    #expect((out == kernel) == true)
    print("zstd: \(kernel.count) bytes from \(z.count) in \(seconds) s")
  }

  // MARK: corrupt input

  /// Every strict prefix of a frame is truncated: headers, blocks, checksum alike.
  @Test func everyTruncationIsReported() throws {
    let data = Self.text(count: 8_000) + Self.random(count: 1_000, seed: 3)
    guard let z = Self.compress(data, ["-19"]) else { return }
    for length in 0..<z.count {
      let e = Self.error(Array(z.prefix(length)), capacity: data.count)
      #expect(e == .truncatedInput, "cut at \(length) of \(z.count): \(String(describing: e))")
    }
  }

  /// A flipped bit anywhere gives an error (a flip in the data itself the checksum catches) or,
  /// where the bit means nothing (e.g. the frame header's unused bit), the same data; never a
  /// trap or wrong data.
  @Test(arguments: [["-1"], ["-19"], ["--ultra", "-22"]])
  func bitFlipsAreCaughtOrHarmless(_ options: [String]) throws {
    let data = Self.text(count: 8_000) + Self.random(count: 1_000, seed: 5) + [UInt8](repeating: 0x55, count: 1000)
    guard let z = Self.compress(data, options) else { return }
    var harmless = 0
    var checksumCaught = 0
    for position in 0..<z.count {
      for bit in position < 64 ? Array(0..<8) : [position % 8] {
        var flipped = z
        flipped[position] ^= 1 << bit
        do {
          let out = try Self.decompress(flipped, capacity: data.count)
          #expect((out == data) == true, "flip \(position):\(bit) gave other data")
          harmless += 1
        } catch {
          if case .checksumMismatch = error { checksumCaught += 1 }
        }
      }
    }
    #expect(harmless < 40, "\(harmless) flips changed nothing")
    #expect(checksumCaught > 0)
  }

  /// A flip inside a raw block's bytes decodes, and only the checksum can tell.
  @Test func aFlipInRawDataIsAChecksumMismatch() throws {
    let data = Self.random(count: 10_000, seed: 11)
    guard let z = Self.compress(data, []) else { return }
    #expect(Self.blockTypes(z) == [0])
    var flipped = z
    flipped[z.count / 2] ^= 0x10
    var altered = data
    altered[z.count / 2 - (z.count - 4 - data.count)] ^= 0x10
    let expected = z.le32(at: z.count - 4)!
    #expect(Self.error(flipped, capacity: data.count)
      == .checksumMismatch(expected: expected, computed: UInt32(truncatingIfNeeded: XXH64.hash(altered))))
    // The same with the checksum itself damaged.
    var badSum = z
    badSum[z.count - 1] ^= 1
    #expect(Self.error(badSum, capacity: data.count)
      == .checksumMismatch(expected: expected ^ 0x0100_0000, computed: expected))
  }

  @Test func headerDefects() throws {
    let abc = Self.blockHeader(last: true, type: 0, size: 3) + Array("abc".utf8)
    // The hand-made frame itself decodes.
    #expect(try Self.decompress(Self.frame(contentSize: 3, blocks: abc), capacity: 3) == Array("abc".utf8))
    // A zero dictionary id is no dictionary.
    #expect(try Self.decompress(Self.frame(contentSize: 3, dictionaryID: 0, blocks: abc), capacity: 3)
      == Array("abc".utf8))
    #expect(Self.error(Self.frame(contentSize: 3, dictionaryID: 7, blocks: abc), capacity: 3)
      == .unsupported(.dictionary(7)))
    var wrongMagic = Self.frame(contentSize: 3, blocks: abc)
    wrongMagic[0] = 0x29
    #expect(Self.error(wrongMagic, capacity: 3) == .corruptData(offset: 0, what: .badMagic))
    // Data after the last frame must be a frame too.
    let good = Self.frame(contentSize: 3, blocks: abc)
    #expect(Self.error(good + [0, 0, 0, 0], capacity: 3) == .corruptData(offset: good.count, what: .badMagic))
    #expect(Self.error(Self.frame(contentSize: 3, descriptorBits: 0x08, blocks: abc), capacity: 3)
      == .corruptData(offset: 0, what: .reservedBit))
    #expect(Self.error(Self.frame(contentSize: 3, blocks: Self.blockHeader(last: true, type: 3, size: 3) + [1, 2, 3]),
                       capacity: 3) == .corruptData(offset: 6, what: .blockType))
    // A single-segment frame's window is its content size: a 4-byte block exceeds a 3-byte frame.
    #expect(Self.error(Self.frame(contentSize: 3, blocks: Self.blockHeader(last: true, type: 0, size: 4) + [1, 2, 3, 4]),
                       capacity: 10) == .corruptData(offset: 6, what: .blockSize))
    #expect(Self.error(Self.frame(contentSize: 4, blocks: abc), capacity: 4) == .corruptData(offset: 0, what: .contentSize))
    // RLE block: one byte repeated.
    #expect(try Self.decompress(Self.frame(contentSize: 5, blocks: Self.blockHeader(last: true, type: 1, size: 5) + [7]),
                                capacity: 5) == [7, 7, 7, 7, 7])
    // Skippable frames alone hold no data; an empty input is truncated.
    #expect(Self.error([0x50, 0x2A, 0x4D, 0x18, 1, 0, 0, 0, 9], capacity: 10) == .unsupported(.noDataFrame))
    #expect(throws: ZstdError.unsupported(.noDataFrame)) { try Self.contentSize([0x50, 0x2A, 0x4D, 0x18, 1, 0, 0, 0, 9]) }
    #expect(throws: ZstdError.truncatedInput) { try Self.contentSize([0x28, 0xB5, 0x2F, 0xFD]) }
    #expect(Self.error([0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 9], capacity: 10) == .truncatedInput)
    #expect(Self.error([], capacity: 10) == .truncatedInput)
  }

  /// Compressed-block defects in hand-made blocks: a sequences section that repeats a table the
  /// frame never had, a literals section bigger than its block, a treeless literals section
  /// with no earlier Huffman table, and a non-empty sequences section cut short.
  @Test func compressedBlockDefects() throws {
    func block(_ body: [UInt8]) -> [UInt8] {
      Self.frame(contentSize: 200, blocks: Self.blockHeader(last: true, type: 2, size: body.count) + body)
    }
    // Raw literals "ab" (header 2 << 3), then one sequence with all three tables in repeat mode.
    #expect(Self.error(block([2 << 3, 0x61, 0x62, 1, 0xFC, 0x80]), capacity: 200)
      == .corruptData(offset: 14, what: .sequencesSection))
    // Raw literals claiming 20 bytes in a 5-byte block.
    #expect(Self.error(block([20 << 3, 0x61, 0x62, 0x63, 0]), capacity: 200)
      == .corruptData(offset: 9, what: .literalsSection))
    // Treeless literals (type 3), one stream of 1 byte for 4 literals, with no table yet.
    #expect(Self.error(block([0x43, 0x40, 0x00, 0x80, 0]), capacity: 200)
      == .corruptData(offset: 9, what: .huffmanTable))
    // Raw literals, then a sequence count but no compression modes byte.
    #expect(Self.error(block([1 << 3, 0x61, 1]), capacity: 200) == .corruptData(offset: 11, what: .sequencesSection))
    // RLE literals and no sequences decode to the literals.
    #expect(try Self.decompress(Self.frame(contentSize: 10, blocks: Self.blockHeader(last: true, type: 2, size: 3)
      + [10 << 3 | 1, 0x61, 0]), capacity: 10) == [UInt8](repeating: 0x61, count: 10))
  }

  /// A too-small output is reported as such wherever the decoder runs out of room: in a raw
  /// block, an RLE block, or a compressed block's literals or matches.
  @Test func outputTooSmallEverywhere() throws {
    let data = Self.text(count: 50_000) + [UInt8](repeating: 0, count: 200_000) + Self.random(count: 5_000, seed: 2)
    guard let z = Self.compress(data, ["-3", "--no-content-size"]) else { return }
    for capacity in stride(from: 0, to: data.count, by: 4999) {
      #expect(Self.error(z, capacity: capacity) == .outputTooSmall, "capacity \(capacity)")
    }
  }
}
