import TestSupport
import Testing
import Foundation
import FirmwareCore

/// Compresses `data` with the host's gzip at `level` (gzip stores the file name: FNAME set);
/// nil when gzip is not installed (a failure under REALM_RUN_REQUIRE_ASSETS=1, see `findTool`).
func hostGzip(_ data: [UInt8], level: Int, name: String = "data") -> [UInt8]? {
  let scratch = ScratchDirectory()
  scratch.file(name, data)
  guard runToolSucceeding("gzip", ["-\(level)", "-f", scratch.path(name)]) != nil else { return nil }
  return scratch.read(name + ".gz")
}

/// Runs `Gzip.decompress` on `input` with an output buffer of `capacity` bytes.
func gunzip(_ input: [UInt8], capacity: Int) throws(DecompressionError) -> [UInt8] {
  var output = [UInt8](repeating: 0, count: capacity)
  let result = input.withUnsafeBytes { i in
    output.withUnsafeMutableBytes { o in Result { () throws(DecompressionError) in try Gzip.decompress(i, into: o) } }
  }
  return Array(output[..<(try result.get())])
}

/// Runs `Gzip.decompressPrefix` for the first `count` bytes.
func gunzipPrefix(_ input: [UInt8], count: Int) throws(DecompressionError) -> [UInt8] {
  var output = [UInt8](repeating: 0, count: count)
  let result = input.withUnsafeBytes { i in
    output.withUnsafeMutableBytes { o in Result { () throws(DecompressionError) in try Gzip.decompressPrefix(i, into: o) } }
  }
  return Array(output[..<(try result.get())])
}

/// Runs `Inflate.decompress` on a raw DEFLATE stream.
func inflate(_ input: [UInt8], capacity: Int) throws(DecompressionError) -> [UInt8] {
  var output = [UInt8](repeating: 0, count: capacity)
  let result = input.withUnsafeBytes { i in
    output.withUnsafeMutableBytes { o in Result { () throws(DecompressionError) in try Inflate.decompress(i, into: o).produced } }
  }
  return Array(output[..<(try result.get())])
}

func expectError(_ expected: DecompressionError, _ body: () throws(DecompressionError) -> Void,
                 sourceLocation: SourceLocation = #_sourceLocation) {
  do throws(DecompressionError) {
    try body()
    Issue.record("no error, expected \(expected)", sourceLocation: sourceLocation)
  } catch {
    #expect(error == expected, sourceLocation: sourceLocation)
  }
}

/// Text-like bytes with repeats near and far (dynamic Huffman blocks, long and short matches).
func sampleText(_ count: Int, seed: UInt32 = 1) -> [UInt8] {
  let words = ["realm", "firmware", "kernel", "gzip", "inflate", "the", "a", "of", "Huffman", "distance", "\n", "  "]
  var x = seed
  var out: [UInt8] = []
  while out.count < count {
    x = x &* 1_103_515_245 &+ 12345
    out += Array(words[Int(x >> 16) % words.count].utf8) + [32]
    if x % 97 == 0 { out += [UInt8(truncatingIfNeeded: x >> 8)] }
  }
  return Array(out[..<count])
}

func randomBytes(_ count: Int, seed: UInt32 = 7) -> [UInt8] {
  var x = seed
  return (0..<count).map { _ in x = x &* 1_103_515_245 &+ 12345; return UInt8(truncatingIfNeeded: x >> 16) }
}

/// Writes DEFLATE bit streams by hand: values LSB first, Huffman codes MSB first.
struct BitWriter {
  var bytes: [UInt8] = []
  var bitCount = 0
  mutating func bits(_ value: Int, _ n: Int) {
    for i in 0..<n {
      if bitCount % 8 == 0 { bytes.append(0) }
      if value >> i & 1 == 1 { bytes[bytes.count - 1] |= 1 << (bitCount % 8) }
      bitCount += 1
    }
  }
  mutating func code(_ value: Int, _ n: Int) { for i in stride(from: n - 1, through: 0, by: -1) { bits(value >> i & 1, 1) } }
  /// A fixed-Huffman literal/length symbol (RFC 1951 3.2.6).
  mutating func fixed(_ symbol: Int) {
    switch symbol {
    case 0..<144: code(0x30 + symbol, 8)
    case 144..<256: code(0x190 + symbol - 144, 9)
    case 256..<280: code(symbol - 256, 7)
    default: code(0xC0 + symbol - 280, 8)
    }
  }
}

@Suite struct InflateTests {
  @Test func errorsSayWhatAndWhere() {
    #expect(DecompressionError.corrupt(offset: 1234).description == "compressed data corrupt at byte 1234")
    #expect(DecompressionError.checksumMismatch(expected: 0xAB, computed: 0x1_0000).description
      == "checksum mismatch (stored 0x000000ab, computed 0x00010000)")
    #expect(DecompressionError.outputTooSmall(capacity: 9).description == "decompressed data exceeds the 9 bytes available")
    #expect(KernelFormatError.unsupportedCompression(Array("lzma".utf8)).description == "EFI zboot compression \"lzma\" unsupported")
    #expect(DecompressionError.corrupt(offset: 5).shifted(by: 10) == .corrupt(offset: 15))
    #expect(DecompressionError.truncated.shifted(by: 10) == .truncated)
  }

  @Test func crc32MatchesTheStandardCheckValue() {
    #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    let long = randomBytes(1000)
    // The running form over pieces equals the one-shot checksum.
    let split = long.withUnsafeBytes { b in
      ~CRC32.update(CRC32.update(0xFFFF_FFFF, with: UnsafeRawBufferPointer(rebasing: b[..<333])),
                    with: UnsafeRawBufferPointer(rebasing: b[333...]))
    }
    #expect(split == CRC32.checksum(long))
    // The table-free form (the runtime services') agrees.
    #expect(Array("123456789".utf8).withUnsafeBytes { CRC32.checksumWithoutTable($0) } == 0xCBF4_3926)
    #expect(long.withUnsafeBytes { CRC32.checksumWithoutTable($0) } == CRC32.checksum(long))
  }

  @Test(arguments: [1, 6, 9])
  func decompressesHostGzipAtEachLevel(level: Int) throws {
    for data in [[], [0x41], Array("hello, hello, hello gzip".utf8), sampleText(100_000), sampleText(1_500_000, seed: 3),
                 randomBytes(70_000)] {
      guard let gz = hostGzip(data, level: level) else { return }
      #expect(gz[3] & 0x08 != 0, "gzip stored the file name (FNAME)")
      #expect(gz.withUnsafeBytes { Gzip.uncompressedSizeHint($0) } == UInt32(data.count))
      let out = try gunzip(gz, capacity: data.count)
      #expect(out.count == data.count)
      #expect((out == data) == true)
    }
  }

  @Test func blockTypesFromHostGzip() throws {
    // Incompressible data: stored blocks (BTYPE 00); one byte: fixed Huffman (01); text: dynamic (10).
    let cases: [([UInt8], Int)] = [(randomBytes(200_000), 0), ([0x41], 1), (sampleText(50_000), 2)]
    for (data, blockType) in cases {
      guard let gz = hostGzip(data, level: 6, name: "x") else { return }
      let deflateStart = 10 + 2  // header + "x\0"
      #expect(Int(gz[deflateStart] >> 1 & 3) == blockType)
      #expect((try gunzip(gz, capacity: data.count) == data) == true)
    }
  }

  @Test func largeOutputBufferReturnsTheBytesWritten() throws {
    let data = sampleText(10_000)
    guard let gz = hostGzip(data, level: 9) else { return }
    #expect((try gunzip(gz, capacity: 1 << 20) == data) == true)
  }

  @Test func headerWithExtraNameCommentAndHeaderCRC() throws {
    let data = sampleText(5000)
    guard let plain = hostGzip(data, level: 6, name: "n") else { return }
    let deflate = Array(plain[12...])  // after the 10-byte header and "n\0"
    var header: [UInt8] = [0x1F, 0x8B, 8, 0x1F, 1, 2, 3, 4, 0, 3]  // FTEXT|FHCRC|FEXTRA|FNAME|FCOMMENT
    header += [5, 0, 0x41, 0x42, 1, 0, 9]  // XLEN 5: subfield "AB" of one byte
    header += Array("vmlinuz".utf8) + [0] + Array("a comment".utf8) + [0]
    let crc = CRC32.checksum(header)
    header.appendLE(UInt64(crc & 0xFFFF), width: 2)
    #expect((try gunzip(header + deflate, capacity: data.count) == data) == true)

    var badHeaderCRC = header + deflate
    badHeaderCRC[header.count - 1] ^= 0x40
    expectError(.checksumMismatch(expected: UInt32(badHeaderCRC[header.count - 2]) | UInt32(badHeaderCRC[header.count - 1]) << 8,
                                  computed: crc & 0xFFFF)) { () throws(DecompressionError) in
      _ = try gunzip(badHeaderCRC, capacity: data.count)
    }
    var reserved = header + deflate
    reserved[3] |= 0x20
    expectError(.corrupt(offset: 3)) { () throws(DecompressionError) in _ = try gunzip(reserved, capacity: data.count) }
    var method = header + deflate
    method[2] = 7
    expectError(.corrupt(offset: 2)) { () throws(DecompressionError) in _ = try gunzip(method, capacity: data.count) }
  }

  @Test func trailerChecks() throws {
    let data = sampleText(20_000)
    guard let gz = hostGzip(data, level: 6) else { return }
    var badCRC = gz
    badCRC[gz.count - 8] ^= 1
    let stored = UInt32(gz[gz.count - 8] ^ 1) | UInt32(gz[gz.count - 7]) << 8 | UInt32(gz[gz.count - 6]) << 16 | UInt32(gz[gz.count - 5]) << 24
    expectError(.checksumMismatch(expected: stored, computed: stored ^ 1)) { () throws(DecompressionError) in
      _ = try gunzip(badCRC, capacity: data.count)
    }
    var badSize = gz
    badSize[gz.count - 4] ^= 2
    expectError(.lengthMismatch(expected: UInt64(data.count ^ 2), produced: UInt64(data.count))) { () throws(DecompressionError) in
      _ = try gunzip(badSize, capacity: data.count + 10)
    }
    #expect(badSize.withUnsafeBytes { Gzip.uncompressedSizeHint($0) } == UInt32(data.count ^ 2))
    // Corrupt offsets count from the start of the file: a reserved block type right after a
    // 10-byte header.
    let reservedBlock: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0x07, 0] + [UInt8](repeating: 0, count: 8)
    expectError(.corrupt(offset: 10)) { () throws(DecompressionError) in _ = try gunzip(reservedBlock, capacity: 10) }
    // Bytes after the member are ignored.
    #expect((try gunzip(gz + [0, 0, 0, 0], capacity: data.count) == data) == true)
  }

  @Test func outputTooSmall() throws {
    let text = sampleText(30_000)
    let random = randomBytes(30_000)
    for data in [text, random] {
      guard let gz = hostGzip(data, level: 6) else { return }
      for capacity in [0, 1, 1000, data.count - 1] {
        expectError(.outputTooSmall(capacity: capacity)) { () throws(DecompressionError) in _ = try gunzip(gz, capacity: capacity) }
      }
      // The prefix reader stops when full instead.
      #expect(try gunzipPrefix(gz, count: 64) == Array(data[..<64]))
    }
  }

  @Test func truncatedAtEveryFewBytes() throws {
    for data in [sampleText(40_000), randomBytes(40_000), [0x41]] {
      guard let gz = hostGzip(data, level: 6) else { return }
      for cut in stride(from: 0, to: gz.count, by: max(1, gz.count / 400)) {
        expectError(.truncated) { () throws(DecompressionError) in _ = try gunzip(Array(gz[..<cut]), capacity: data.count) }
      }
      for cut in gz.count - 8..<gz.count {
        expectError(.truncated) { () throws(DecompressionError) in _ = try gunzip(Array(gz[..<cut]), capacity: data.count) }
      }
    }
    expectError(.truncated) { () throws(DecompressionError) in _ = try inflate([], capacity: 10) }
  }

  @Test func bitFlipsAreReportedNotTrapped() throws {
    // Whatever the flip, the result is an error from the decoder or the checks, never a trap or
    // output that differs from the original.
    let data = sampleText(20_000)
    guard let gz = hostGzip(data, level: 9, name: "n") else { return }
    var x: UInt32 = 99
    var kinds: Set<String> = []
    for _ in 0..<600 {
      x = x &* 1_103_515_245 &+ 12345
      var bad = gz
      // Any bit of the DEFLATE data but its last byte (whose padding bits are ignored), or of the trailer.
      let candidates = (gz.count - 13) * 8
      var bit = Int(x >> 8) % candidates
      if bit >= (gz.count - 12 - 9) * 8 { bit += 8 }
      bad[12 + bit / 8] ^= 1 << (bit % 8)
      do throws(DecompressionError) {
        // A few bits change nothing (zlib decodes them alike: e.g. the sole code of an otherwise
        // empty distance set); then the CRC-32 vouches for the same output.
        let out = try gunzip(bad, capacity: data.count)
        #expect((out == data) == true, "a flipped bit \(bit) changed the output unnoticed")
        kinds.insert("same")
      } catch {
        switch error {
        case .corrupt: kinds.insert("corrupt")
        case .checksumMismatch: kinds.insert("checksum")
        case .lengthMismatch: kinds.insert("length")
        case .outputTooSmall: kinds.insert("output")
        case .truncated: kinds.insert("truncated")
        case .unsupported: Issue.record("gzip never reports unsupported")
        }
      }
    }
    #expect(kinds.contains("corrupt") && kinds.contains("checksum"))
  }

  @Test func handWrittenStreams() throws {
    // Fixed Huffman: 'a', then length 3 at distance 1 (overlapping copy), end of block.
    var w = BitWriter()
    w.bits(1, 1); w.bits(1, 2)
    w.fixed(0x61); w.fixed(257); w.code(0, 5); w.fixed(256)
    #expect(try inflate(w.bytes, capacity: 10) == Array("aaaa".utf8))

    // Distance 2 after one byte: before the start of the output.
    var far = BitWriter()
    far.bits(1, 1); far.bits(1, 2)
    far.fixed(0x61); far.fixed(257); far.code(1, 5); far.fixed(256)
    expectError(.corrupt(offset: 2)) { () throws(DecompressionError) in _ = try inflate(far.bytes, capacity: 10) }

    // Stored block: LEN 3, NLEN wrong.
    let storedBad: [UInt8] = [1, 3, 0, 0xFC, 0xFE, 0x61, 0x62, 0x63]
    expectError(.corrupt(offset: 1)) { () throws(DecompressionError) in _ = try inflate(storedBad, capacity: 10) }
    #expect(try inflate([1, 3, 0, 0xFC, 0xFF, 0x61, 0x62, 0x63], capacity: 3) == Array("abc".utf8))
    expectError(.truncated) { () throws(DecompressionError) in _ = try inflate([1, 3, 0, 0xFC, 0xFF, 0x61], capacity: 3) }

    // Block type 11 is reserved.
    expectError(.corrupt(offset: 0)) { () throws(DecompressionError) in _ = try inflate([0x07, 0], capacity: 10) }

    // Fixed-code literal/length symbol 286: exists in the code, never valid.
    var reserved = BitWriter()
    reserved.bits(1, 1); reserved.bits(1, 2); reserved.fixed(286); reserved.fixed(256)
    expectError(.corrupt(offset: 0)) { () throws(DecompressionError) in _ = try inflate(reserved.bytes + [0, 0], capacity: 10) }
  }

  /// A dynamic block header with the given code-length code lengths (in the RFC's order).
  func dynamicHeader(literalCount: Int = 257, distanceCount: Int = 1, codeLengthLengths: [Int]) -> BitWriter {
    var w = BitWriter()
    w.bits(1, 1); w.bits(2, 2)
    w.bits(literalCount - 257, 5); w.bits(distanceCount - 1, 5); w.bits(codeLengthLengths.count - 4, 4)
    for l in codeLengthLengths { w.bits(l, 3) }
    return w
  }

  @Test func codeLengthSetsFollowZlibRules() throws {
    // Over-subscribed code-length code: four one-bit codes.
    let over = dynamicHeader(codeLengthLengths: [1, 1, 1, 1])
    expectError(.corrupt(offset: 0)) { () throws(DecompressionError) in _ = try inflate(over.bytes + [0, 0, 0], capacity: 10) }
    // Incomplete code-length code: a single two-bit code.
    let incomplete = dynamicHeader(codeLengthLengths: [2, 0, 0, 0])
    expectError(.corrupt(offset: 0)) { () throws(DecompressionError) in _ = try inflate(incomplete.bytes + [0, 0, 0], capacity: 10) }
    // Too many literal/length codes (HLIT 287).
    let tooMany = dynamicHeader(literalCount: 287, codeLengthLengths: [1, 1, 0, 0])
    expectError(.corrupt(offset: 0)) { () throws(DecompressionError) in _ = try inflate(tooMany.bytes + [0, 0], capacity: 10) }

    // Code-length code: symbol 0 → "0", 8 → "10", 18 → "11" (order: 16 17 18 0 8 ...).
    func lengths(_ body: (inout BitWriter) -> Void) -> [UInt8] {
      var w = dynamicHeader(distanceCount: 1, codeLengthLengths: [0, 0, 2, 1, 2])
      body(&w)
      return w.bytes + [0, 0, 0, 0]
    }
    // Literal/length lengths over-subscribed: 257 codes of length 8 (only 256 fit).
    let overLiterals = lengths { w in for _ in 0..<258 { w.code(2, 2) } }
    expectError(.corrupt(offset: 0)) { () throws(DecompressionError) in _ = try inflate(overLiterals, capacity: 10) }
    // Repeat-zeros past the end of the lengths: 257 + 1 codes, 18 with 138 zeros twice = 276.
    let overrun = lengths { w in w.code(3, 2); w.bits(127, 7); w.code(3, 2); w.bits(127, 7) }
    expectError(.corrupt(offset: 6)) { () throws(DecompressionError) in _ = try inflate(overrun, capacity: 10) }
    // No end-of-block code: all zero lengths.
    let noEnd = lengths { w in w.code(3, 2); w.bits(127, 7); w.code(3, 2); w.bits(109, 7) }
    expectError(.corrupt(offset: 0)) { () throws(DecompressionError) in _ = try inflate(noEnd, capacity: 10) }
  }

  @Test func singleCodeLiteralTreeAndEmptyDistanceTreeAreAccepted() throws {
    // zlib accepts a literal/length set with one one-bit code and no distance codes: here only
    // end-of-block (length 1), so the block decodes to nothing.
    // Code-length code: 0 → "0", 1 → "1" (order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1).
    var w = BitWriter()
    w.bits(1, 1); w.bits(2, 2)
    w.bits(0, 5); w.bits(0, 5); w.bits(18 - 4, 4)
    for symbol in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] { w.bits(symbol == 0 || symbol == 1 ? 1 : 0, 3) }
    for i in 0..<258 { w.code(i == 256 ? 1 : 0, 1) }  // 257 literal/length lengths + 1 distance length (0)
    w.code(0, 1)  // end of block (the one-bit code "0")
    #expect(try inflate(w.bytes, capacity: 10) == [])
  }
}
