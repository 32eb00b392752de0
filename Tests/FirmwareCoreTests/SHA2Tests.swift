import Crypto
import FirmwareCore
import Testing

/// FirmwareCore's SHA-256 and SHA-512 against the FIPS 180-4 examples (NIST CSRC "Example
/// Values") and, for every length and many chunkings, against swift-crypto.
@Suite struct SHA2Tests {
  static func hex(_ bytes: [UInt8]) -> String { ByteString.hex(bytes: bytes) }
  static func ascii(_ s: String) -> [UInt8] { Array(s.utf8) }

  static let m448 = ascii("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
  static let m896 = ascii(
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")

  @Test func sha256KnownAnswers() {
    #expect(Self.hex(FirmwareCore.SHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(Self.hex(FirmwareCore.SHA256.hash(Self.ascii("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(Self.hex(FirmwareCore.SHA256.hash(Self.m448)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    #expect(Self.hex(FirmwareCore.SHA256.hash(Self.m896)) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    #expect(Self.hex(FirmwareCore.SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)))
      == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  @Test func sha512KnownAnswers() {
    #expect(Self.hex(FirmwareCore.SHA512.hash([UInt8]()))
      == "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")
    #expect(Self.hex(FirmwareCore.SHA512.hash(Self.ascii("abc")))
      == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
    #expect(Self.hex(FirmwareCore.SHA512.hash(Self.m448))
      == "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c33596fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445")
    #expect(Self.hex(FirmwareCore.SHA512.hash(Self.m896))
      == "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909")
    #expect(Self.hex(FirmwareCore.SHA512.hash([UInt8](repeating: 0x61, count: 1_000_000)))
      == "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b")
  }

  /// The million 'a's again, fed in odd-sized pieces through the pointer API.
  @Test func millionAsInPieces() {
    var h256 = FirmwareCore.SHA256()
    var h512 = FirmwareCore.SHA512()
    let piece = [UInt8](repeating: 0x61, count: 1_100)
    var left = 1_000_000
    var size = 1
    while left > 0 {
      let n = min(size, left)
      piece.withUnsafeBytes { raw in
        let part = UnsafeRawBufferPointer(rebasing: raw[0..<n])
        h256.update(part)
        h512.update(part)
      }
      left -= n
      size = size % 997 + 7
    }
    #expect(Self.hex(h256.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    #expect(Self.hex(h512.finalize()).hasPrefix("e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"))
  }

  /// Every length 0...300 crosses the padding boundaries of both block sizes (55/56/64, 111/112/128, ...).
  @Test func everyLengthMatchesSwiftCrypto() {
    var generator = SplitMix64(seed: 0x5EED)
    for length in 0...300 {
      let message = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
      #expect(FirmwareCore.SHA256.hash(message) == Array(Crypto.SHA256.hash(data: message)), "SHA-256 of \(length) bytes")
      #expect(FirmwareCore.SHA512.hash(message) == Array(Crypto.SHA512.hash(data: message)), "SHA-512 of \(length) bytes")
    }
  }

  /// Random messages fed in random chunks (including empty ones) give the one-shot digest;
  /// finalize leaves the running hash usable.
  @Test func randomChunkingMatchesSwiftCrypto() {
    var generator = SplitMix64(seed: 42)
    for round in 0..<200 {
      let length = Int(generator.next() % (round < 100 ? 600 : 5000))
      let message = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
      var h256 = FirmwareCore.SHA256()
      var h512 = FirmwareCore.SHA512()
      var offset = 0
      while offset < length {
        let n = min(length - offset, Int(generator.next() % 300))
        let chunk = Array(message[offset..<(offset + n)])
        if generator.next() & 1 == 0 {
          h256.update(chunk)
          h512.update(chunk)
        } else {
          chunk.withUnsafeBytes { h256.update($0); h512.update($0) }
        }
        offset += n
        if generator.next() % 8 == 0 {
          let prefix = Array(message[0..<offset])
          #expect(h256.finalize() == Array(Crypto.SHA256.hash(data: prefix)))
        }
      }
      #expect(h256.finalize() == Array(Crypto.SHA256.hash(data: message)), "SHA-256 round \(round), \(length) bytes")
      #expect(h512.finalize() == Array(Crypto.SHA512.hash(data: message)), "SHA-512 round \(round), \(length) bytes")
      #expect(h256.finalize() == h256.finalize())
    }
  }

  @Test func unalignedInput() {
    let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    for start in 0..<9 {
      let slice = Array(message[start...])
      let expected256 = Array(Crypto.SHA256.hash(data: slice))
      let expected512 = Array(Crypto.SHA512.hash(data: slice))
      message.withUnsafeBytes { raw in
        let part = UnsafeRawBufferPointer(rebasing: raw[start...])
        #expect(FirmwareCore.SHA256.hash(part) == expected256)
        #expect(FirmwareCore.SHA512.hash(part) == expected512)
      }
    }
  }
}

/// A small deterministic generator (Steele, Lea, Flood: SplitMix64).
struct SplitMix64 {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
