import Testing
@testable import Attestation

/// `CBORValue.encoded()`: RFC 8949 section 4.2.1 deterministic, whatever order the maps were built in.
@Suite struct CBORValueTests {
  /// Integer keys of both signs and text keys, at two levels: sorted by their encodings (major
  /// type first: 10 is 0x0a, -1 is 0x20, "a" is 0x61 0x61), and decoded back to the same items.
  @Test func nestedMapsOfMixedKeysSortByEncodedKey() throws {
    let inner: [(key: CBORValue, value: CBORValue)] = [(.text("b"), .unsigned(2)), (.text("a"), .negative(0))]
    let outer: [(key: CBORValue, value: CBORValue)] = [
      (.text("a"), .map(inner)), (.int(-1), .bytes([1, 2])), (.int(10), .tagged(560, .text("x"))),
    ]
    let bytes = CBORValue.map(outer).encoded()
    #expect(CBORValue.map(outer.reversed()).encoded() == bytes)
    #expect(bytes == [0xa3, 0x0a, 0xd9, 0x02, 0x30, 0x61, 0x78, 0x20, 0x42, 0x01, 0x02, 0x61, 0x61,
                      0xa2, 0x61, 0x61, 0x20, 0x61, 0x62, 0x02])
    expectDeterministic(bytes)
    let decoded = try CBORValue.decode(bytes)
    #expect(decoded.keys == [.unsigned(10), .negative(0), .text("a")])
    #expect(decoded[text: "a"] == .map([(.text("a"), .negative(0)), (.text("b"), .unsigned(2))]))
  }

  /// Keys that repeat (which no reader accepts) keep their order: the bytes still follow the value.
  @Test func repeatedKeysKeepTheirOrder() throws {
    let bytes = CBORValue.map([(.unsigned(1), .unsigned(2)), (.unsigned(0), .unsigned(0)), (.unsigned(1), .unsigned(1))]).encoded()
    #expect(bytes == [0xa3, 0x00, 0x00, 0x01, 0x02, 0x01, 0x01])
  }
}
