/// Why a device tree blob was rejected.
public enum DeviceTreeError: Error, Equatable {
  case badMagic
  case truncated
  case unsupportedVersion(UInt32)
  case malformedStructure(offset: Int)
  case tooDeep
  case nodeNotFound
}

/// A parsed flattened device tree (DTB): a flat list of nodes and properties that index into
/// the original bytes. Parsing checks every offset against the blob's bounds.
public struct DeviceTree {
  /// One node: its name (unit address included), parent index (-1 for the root) and the range
  /// of its properties in `properties`.
  public struct Node {
    public var name: [UInt8]
    public var parent: Int
    public var firstProperty: Int
    public var propertyCount: Int
  }

  /// One property: its name and value bytes.
  public struct Property {
    public var name: [UInt8]
    public var value: [UInt8]
  }

  public internal(set) var nodes: [Node] = []
  public internal(set) var properties: [Property] = []
  /// The memory reservation block entries (address, size).
  public internal(set) var reservations: [(address: UInt64, size: UInt64)] = []
  /// The boot CPU id from the header.
  public internal(set) var bootCPU: UInt32 = 0

  static let magic: UInt32 = 0xD00D_FEED

  /// The total size declared by a DTB header at the start of `header` (at least 8 bytes).
  public static func totalSize(header: [UInt8]) throws(DeviceTreeError) -> Int {
    guard let m = header.be32(at: 0) else { throw .truncated }
    guard m == magic else { throw .badMagic }
    guard let size = header.be32(at: 4) else { throw .truncated }
    return Int(size)
  }

  /// Parses `blob`.
  public init(blob: [UInt8]) throws(DeviceTreeError) {
    guard let m = blob.be32(at: 0) else { throw .truncated }
    guard m == DeviceTree.magic else { throw .badMagic }
    guard let total = blob.be32(at: 4), let offStruct = blob.be32(at: 8), let offStrings = blob.be32(at: 12),
          let offRsv = blob.be32(at: 16), let version = blob.be32(at: 20), let lastCompat = blob.be32(at: 24),
          let boot = blob.be32(at: 28), let sizeStrings = blob.be32(at: 32), let sizeStruct = blob.be32(at: 36)
    else { throw .truncated }
    guard Int(total) <= blob.count, total >= 40 else { throw .truncated }
    guard version >= 16, lastCompat <= 17 else { throw .unsupportedVersion(version) }
    let totalSize = Int(total)
    let structStart = Int(offStruct), structEnd = Int(offStruct) + Int(sizeStruct)
    let stringsStart = Int(offStrings), stringsEnd = Int(offStrings) + Int(sizeStrings)
    guard structEnd <= totalSize, stringsEnd <= totalSize, Int(offRsv) <= totalSize else { throw .truncated }
    bootCPU = boot

    var rsv = Int(offRsv)
    while true {
      guard let a = blob.be64(at: rsv), let s = blob.be64(at: rsv + 8), rsv + 16 <= totalSize else { throw .truncated }
      if a == 0 && s == 0 { break }
      reservations.append((a, s))
      rsv += 16
    }

    var stack: [Int] = []
    var pos = structStart
    var ended = false
    while !ended {
      guard pos + 4 <= structEnd, let token = blob.be32(at: pos) else { throw .malformedStructure(offset: pos) }
      pos += 4
      switch token {
      case 1:  // FDT_BEGIN_NODE
        var end = pos
        while end < structEnd && blob[end] != 0 { end += 1 }
        guard end < structEnd else { throw .malformedStructure(offset: pos) }
        guard stack.count < 64 else { throw .tooDeep }
        if stack.isEmpty && !nodes.isEmpty { throw .malformedStructure(offset: pos) }
        nodes.append(Node(name: Array(blob[pos..<end]), parent: stack.last ?? -1,
                          firstProperty: properties.count, propertyCount: 0))
        stack.append(nodes.count - 1)
        pos = DeviceTree.align4(end + 1)
      case 2:  // FDT_END_NODE
        guard !stack.isEmpty else { throw .malformedStructure(offset: pos) }
        stack.removeLast()
      case 3:  // FDT_PROP
        guard let current = stack.last, let len = blob.be32(at: pos), let nameOff = blob.be32(at: pos + 4)
        else { throw .malformedStructure(offset: pos) }
        let valueStart = pos + 8
        guard Int(len) <= structEnd - valueStart else { throw .malformedStructure(offset: pos) }
        // Properties must directly follow their node's BEGIN_NODE (no child in between).
        guard nodes[current].firstProperty + nodes[current].propertyCount == properties.count
        else { throw .malformedStructure(offset: pos) }
        let nameStart = stringsStart + Int(nameOff)
        guard nameStart < stringsEnd else { throw .malformedStructure(offset: pos) }
        var nameEnd = nameStart
        while nameEnd < stringsEnd && blob[nameEnd] != 0 { nameEnd += 1 }
        guard nameEnd < stringsEnd else { throw .malformedStructure(offset: pos) }
        properties.append(Property(name: Array(blob[nameStart..<nameEnd]),
                                   value: Array(blob[valueStart..<(valueStart + Int(len))])))
        nodes[current].propertyCount += 1
        pos = DeviceTree.align4(valueStart + Int(len))
      case 4:  // FDT_NOP
        continue
      case 9:  // FDT_END
        guard stack.isEmpty, !nodes.isEmpty else { throw .malformedStructure(offset: pos) }
        ended = true
      default:
        throw .malformedStructure(offset: pos - 4)
      }
    }
  }

  static func align4(_ v: Int) -> Int { (v + 3) & ~3 }

  /// The value of property `name` of node `node`, or nil.
  public func property(_ node: Int, _ name: StaticString) -> [UInt8]? {
    property(node, named: ByteString.of(name))
  }

  /// The value of property `name` of node `node`, or nil.
  public func property(_ node: Int, named name: [UInt8]) -> [UInt8]? {
    guard node >= 0, node < nodes.count else { return nil }
    let n = nodes[node]
    for i in n.firstProperty..<(n.firstProperty + n.propertyCount) where properties[i].name == name {
      return properties[i].value
    }
    return nil
  }

  /// Indices of the children of `node`.
  public func children(of node: Int) -> [Int] {
    var result: [Int] = []
    for i in nodes.indices where nodes[i].parent == node { result.append(i) }
    return result
  }

  /// The node name without its unit address ("memory@40000000" → "memory").
  public func baseName(_ node: Int) -> [UInt8] {
    guard node >= 0, node < nodes.count else { return [] }
    let name = nodes[node].name
    if let at = name.firstIndex(of: 64) { return Array(name[..<at]) }
    return name
  }

  /// The node at an absolute path such as "/chosen" or "/soc/uart@1000"; a component without a
  /// unit address also matches a node that has one.
  public func node(atPath path: [UInt8]) -> Int? {
    guard !nodes.isEmpty, path.first == 47 else { return nil }
    var current = 0
    for component in path.split(separator: 47) where !component.isEmpty {
      let want = Array(component)
      var found: Int? = nil
      for child in children(of: current) {
        if nodes[child].name == want || (!want.contains(64) && baseName(child) == want) { found = child; break }
      }
      guard let next = found else { return nil }
      current = next
    }
    return current
  }

  /// The node at `path`.
  public func node(atPath path: StaticString) -> Int? { node(atPath: ByteString.of(path)) }

  /// Resolves a path or an /aliases name (as used by stdout-path) to a node.
  public func resolve(pathOrAlias: [UInt8]) -> Int? {
    if pathOrAlias.first == 47 { return node(atPath: pathOrAlias) }
    guard let aliases = node(atPath: "/aliases"), var target = property(aliases, named: pathOrAlias) else { return nil }
    if target.last == 0 { target.removeLast() }
    return node(atPath: target)
  }

  /// The strings of a string-list property (e.g. "compatible").
  public static func strings(_ value: [UInt8]) -> [[UInt8]] {
    value.split(separator: 0, omittingEmptySubsequences: true).map { Array($0) }
  }

  /// A string property without its terminating NUL.
  public static func string(_ value: [UInt8]) -> [UInt8] {
    if let z = value.firstIndex(of: 0) { return Array(value[..<z]) }
    return value
  }

  /// True when the node's "compatible" list contains `compatible`.
  public func isCompatible(_ node: Int, _ compatible: StaticString) -> Bool {
    guard let value = property(node, "compatible") else { return false }
    return DeviceTree.strings(value).contains(ByteString.of(compatible))
  }

  /// True unless the node has status = something other than "okay"/"ok".
  public func isEnabled(_ node: Int) -> Bool {
    guard let status = property(node, "status") else { return true }
    let s = DeviceTree.string(status)
    return s == ByteString.of("okay") || s == ByteString.of("ok")
  }

  /// The #address-cells / #size-cells that apply to the children of `node` (defaults 2 / 1).
  public func cells(of node: Int) -> (address: Int, size: Int) {
    let a = property(node, "#address-cells").flatMap { $0.be32(at: 0) }.map { Int($0) } ?? 2
    let s = property(node, "#size-cells").flatMap { $0.be32(at: 0) }.map { Int($0) } ?? 1
    return (a, s)
  }

  /// Decodes a `reg` property of `node` with its parent's cell sizes.
  public func registers(of node: Int) throws(DeviceTreeError) -> [(address: UInt64, size: UInt64)] {
    guard node >= 0, node < nodes.count, let reg = property(node, "reg") else { return [] }
    let (ac, sc) = cells(of: nodes[node].parent)
    return try DeviceTree.decodePairs(reg, addressCells: ac, sizeCells: sc)
  }

  /// Decodes (address, size) pairs of the given cell widths (1 or 2 cells each; 0 cells allowed for size).
  public static func decodePairs(_ value: [UInt8], addressCells: Int, sizeCells: Int) throws(DeviceTreeError)
    -> [(address: UInt64, size: UInt64)]
  {
    guard (1...2).contains(addressCells), (0...2).contains(sizeCells) else { throw .malformedStructure(offset: 0) }
    let stride = 4 * (addressCells + sizeCells)
    guard value.count % stride == 0 else { throw .malformedStructure(offset: 0) }
    var result: [(address: UInt64, size: UInt64)] = []
    var off = 0
    while off < value.count {
      guard let a = readCells(value, at: off, cells: addressCells),
            let s = readCells(value, at: off + 4 * addressCells, cells: sizeCells) else { throw .truncated }
      result.append((a, s))
      off += stride
    }
    return result
  }

  /// Reads a big-endian number made of `cells` 32-bit cells (0...2).
  public static func readCells(_ value: [UInt8], at offset: Int, cells: Int) -> UInt64? {
    switch cells {
    case 0: return 0
    case 1: return value.be32(at: offset).map { UInt64($0) }
    case 2: return value.be64(at: offset)
    default: return nil
    }
  }
}
