import CLibFDT
import FirmwareCore

/// Why a device tree could not be built or read.
public enum DeviceTreeError: Error, Equatable, CustomStringConvertible {
  /// libfdt refused an operation (its error code and what was being done).
  case libfdt(code: Int32, operation: String)
  /// The tree does not fit the size the blob may have.
  case tooLarge(capacity: Int)

  public var description: String {
    switch self {
    case .libfdt(let code, let operation):
      return "device tree: \(operation): \(String(cString: fdt_strerror(code)))"
    case .tooLarge(let capacity):
      return "device tree does not fit in \(capacity) bytes"
    }
  }
}

/// Builds a flattened device tree blob with libfdt's sequential-write API.
///
/// Nodes are written in the order given, so the same calls always produce the same bytes: a Realm's
/// measurement covers the DTB, and `realm-run measure` must predict it.
///
/// ```swift
/// var tree = try DeviceTreeWriter(capacity: 0x10000)
/// try tree.node("") { tree in
///   try tree.property("#address-cells", u32: 2)
///   try tree.node("chosen") { try $0.property("bootargs", string: "console=ttyS0") }
/// }
/// let blob = try tree.finish()
/// ```
public struct DeviceTreeWriter {
  private var buffer: [UInt8]
  private var nextPHandle: UInt32 = 1

  /// Starts an empty tree that may grow to `capacity` bytes.
  public init(capacity: Int) throws(DeviceTreeError) {
    buffer = [UInt8](repeating: 0, count: capacity)
    try check(buffer.withUnsafeMutableBytes { fdt_create($0.baseAddress, Int32($0.count)) }, "create")
    try check(buffer.withUnsafeMutableBytes { fdt_finish_reservemap($0.baseAddress) }, "reserve map")
  }

  /// A new phandle, unique in this tree.
  public mutating func allocatePHandle() -> UInt32 {
    defer { nextPHandle += 1 }
    return nextPHandle
  }

  /// Writes a node named `name` (with `@unit-address` if it has one) whose contents `body` writes.
  public mutating func node(_ name: String, _ body: (inout DeviceTreeWriter) throws(DeviceTreeError) -> Void) throws(DeviceTreeError) {
    try check(buffer.withUnsafeMutableBytes { fdt_begin_node($0.baseAddress, name) }, "begin node '\(name)'")
    try body(&self)
    try check(buffer.withUnsafeMutableBytes { fdt_end_node($0.baseAddress) }, "end node '\(name)'")
  }

  /// A property with raw bytes as its value.
  public mutating func property(_ name: String, bytes: [UInt8]) throws(DeviceTreeError) {
    let status = buffer.withUnsafeMutableBytes { fdt in
      bytes.withUnsafeBytes { value in
        fdt_property(fdt.baseAddress, name, value.baseAddress, Int32(value.count))
      }
    }
    try check(status, "property '\(name)'")
  }

  /// An empty (boolean) property.
  public mutating func property(_ name: String) throws(DeviceTreeError) {
    try property(name, bytes: [])
  }

  /// A property of one 32-bit cell.
  public mutating func property(_ name: String, u32 value: UInt32) throws(DeviceTreeError) {
    try property(name, cells: [value])
  }

  /// A property of 32-bit cells, big-endian as the format requires.
  public mutating func property(_ name: String, cells: [UInt32]) throws(DeviceTreeError) {
    try property(name, bytes: cells.flatMap { $0.bigEndianBytes })
  }

  /// A property of 64-bit values (two cells each).
  public mutating func property(_ name: String, u64s: [UInt64]) throws(DeviceTreeError) {
    try property(name, cells: u64s.flatMap { [UInt32($0 >> 32), UInt32(truncatingIfNeeded: $0)] })
  }

  /// A property of one 64-bit value.
  public mutating func property(_ name: String, u64 value: UInt64) throws(DeviceTreeError) {
    try property(name, u64s: [value])
  }

  /// A NUL-terminated string property.
  public mutating func property(_ name: String, string: String) throws(DeviceTreeError) {
    try property(name, strings: [string])
  }

  /// A string-list property (each string NUL-terminated).
  public mutating func property(_ name: String, strings: [String]) throws(DeviceTreeError) {
    try property(name, bytes: strings.flatMap { Array($0.utf8) + [0] })
  }

  /// Closes the tree and returns the blob, padded with zeros to the capacity given at the start.
  public mutating func finish() throws(DeviceTreeError) -> [UInt8] {
    try check(buffer.withUnsafeMutableBytes { fdt_finish($0.baseAddress) }, "finish")
    let size = DeviceTreeReader.totalSize(of: buffer)
    // Sequential-write leaves unused bytes in the middle of the buffer: copy the blob out and pad.
    var blob = Array(buffer[0..<size])
    blob.append(contentsOf: repeatElement(0, count: buffer.count - size))
    return blob
  }

  private func check(_ status: Int32, _ operation: @autoclosure () -> String) throws(DeviceTreeError) {
    if status == -FDT_ERR_NOSPACE { throw .tooLarge(capacity: buffer.count) }
    if status < 0 { throw .libfdt(code: status, operation: operation()) }
  }
}
