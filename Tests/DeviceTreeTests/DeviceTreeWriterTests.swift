import DeviceTree
import Testing

@Suite struct DeviceTreeWriterTests {
  @Test func propertiesRoundTrip() throws {
    var writer = try DeviceTreeWriter(capacity: 4096)
    try writer.node("") { (tree) throws(DeviceTreeError) in
      try tree.property("u32", u32: 0xDEAD_BEEF)
      try tree.property("u64", u64: 0x1_2345_6789)
      try tree.property("strings", strings: ["a", "bc"])
      try tree.property("empty")
      try tree.node("child@1") { (tree) throws(DeviceTreeError) in try tree.property("x", cells: [1, 2]) }
    }
    let blob = try writer.finish()
    #expect(blob.count == 4096)
    let reader = try DeviceTreeReader(blob)
    #expect(reader.cells("u32", at: "/") == [0xDEAD_BEEF])
    #expect(reader.cells("u64", at: "/") == [1, 0x2345_6789])
    #expect(reader.property("strings", at: "/") == Array("a\0bc\0".utf8))
    #expect(reader.strings("strings", at: "/") == ["a", "bc"])
    #expect(reader.property("empty", at: "/") == [])
    #expect(reader.propertyNames(at: "/") == ["u32", "u64", "strings", "empty"])
    #expect(reader.children(of: "/") == ["child@1"])
    #expect(reader.cells("x", at: "/child@1") == [1, 2])
    #expect(reader.property("missing", at: "/") == nil)
    #expect(!reader.hasNode("/nope"))
  }

  @Test func reportsWhenTheTreeDoesNotFit() throws {
    var writer = try DeviceTreeWriter(capacity: 128)
    #expect(throws: DeviceTreeError.tooLarge(capacity: 128)) {
      try writer.node("") { (tree) throws(DeviceTreeError) in
        try tree.property("big", bytes: [UInt8](repeating: 1, count: 200))
      }
    }
  }

  @Test func rejectsACorruptBlob() throws {
    var writer = try DeviceTreeWriter(capacity: 256)
    try writer.node("") { (tree) throws(DeviceTreeError) in try tree.property("a", u32: 1) }
    var blob = try writer.finish()
    blob[0] ^= 0xFF  // magic
    #expect(throws: DeviceTreeError.self) { try DeviceTreeReader(blob) }
  }

  @Test func phandlesAreUnique() throws {
    var writer = try DeviceTreeWriter(capacity: 256)
    let first = writer.allocatePHandle()
    let second = writer.allocatePHandle()
    #expect(first != 0 && second != first)
  }
}
