import CLibFDT
import FirmwareCore

/// Reads a flattened device tree blob through libfdt: nodes by path, their properties and children.
/// Used to check what ``DeviceTreeWriter`` produced and to inspect `--dump-dtb` output.
public struct DeviceTreeReader {
  public let blob: [UInt8]

  /// Checks the header and structure of `blob`.
  public init(_ blob: [UInt8]) throws(DeviceTreeError) {
    self.blob = blob
    let status = blob.withUnsafeBytes { fdt_check_full($0.baseAddress, $0.count) }
    if status < 0 { throw .libfdt(code: status, operation: "check") }
  }

  /// The value of property `name` of the node at `path`, or `nil` when either is missing.
  public func property(_ name: String, at path: String) -> [UInt8]? {
    blob.withUnsafeBytes { fdt -> [UInt8]? in
      let node = fdt_path_offset(fdt.baseAddress, path)
      guard node >= 0 else { return nil }
      var length: Int32 = 0
      guard let value = fdt_getprop(fdt.baseAddress, node, name, &length), length >= 0 else { return nil }
      return Array(UnsafeRawBufferPointer(start: value, count: Int(length)))
    }
  }

  /// Whether a node exists at `path`.
  public func hasNode(_ path: String) -> Bool {
    blob.withUnsafeBytes { fdt_path_offset($0.baseAddress, path) >= 0 }
  }

  /// The names of the children of the node at `path`, in order.
  public func children(of path: String) -> [String] {
    blob.withUnsafeBytes { fdt -> [String] in
      let base = fdt.baseAddress
      var names: [String] = []
      var node = fdt_path_offset(base, path)
      guard node >= 0 else { return [] }
      node = fdt_first_subnode(base, node)
      while node >= 0 {
        if let name = fdt_get_name(base, node, nil) { names.append(String(cString: name)) }
        node = fdt_next_subnode(base, node)
      }
      return names
    }
  }

  /// The names of the properties of the node at `path`, in order.
  public func propertyNames(at path: String) -> [String] {
    blob.withUnsafeBytes { fdt -> [String] in
      let base = fdt.baseAddress
      let node = fdt_path_offset(base, path)
      guard node >= 0 else { return [] }
      var names: [String] = []
      var offset = fdt_first_property_offset(base, node)
      while offset >= 0 {
        var name: UnsafePointer<CChar>?
        var length: Int32 = 0
        if fdt_getprop_by_offset(base, offset, &name, &length) != nil, let name {
          names.append(String(cString: name))
        }
        offset = fdt_next_property_offset(base, offset)
      }
      return names
    }
  }

  /// A property as big-endian 32-bit cells.
  public func cells(_ name: String, at path: String) -> [UInt32]? {
    guard let bytes = property(name, at: path), bytes.count % 4 == 0 else { return nil }
    return stride(from: 0, to: bytes.count, by: 4).map { bytes.be32(at: $0)! }
  }

  /// A property as a list of NUL-terminated strings.
  public func strings(_ name: String, at path: String) -> [String]? {
    guard let bytes = property(name, at: path), bytes.last == 0 else { return nil }
    return bytes.dropLast().split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
  }

  /// The total size recorded in the header.
  public var totalSize: Int { Self.totalSize(of: blob) }

  /// The total size a blob's header records (its `totalsize` field, big-endian at offset 4): the
  /// used part of a blob padded to a larger slot. The blob must hold at least the header's 8 bytes.
  public static func totalSize(of blob: [UInt8]) -> Int {
    Int(blob.be32(at: 4)!)
  }
}
