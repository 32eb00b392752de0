/// Editing a parsed device tree and writing it back as a DTB (version 17).
/// The editor rebuilds the blob, so growth needs no spare room in the original buffer.
extension DeviceTree {
  /// Sets (adds or replaces) property `name` on `node`.
  public mutating func setProperty(_ node: Int, named name: [UInt8], value: [UInt8]) {
    guard node >= 0, node < nodes.count else { return }
    let n = nodes[node]
    for i in n.firstProperty..<(n.firstProperty + n.propertyCount) where properties[i].name == name {
      properties[i].value = value
      return
    }
    let insertAt = n.firstProperty + n.propertyCount
    properties.insert(Property(name: name, value: value), at: insertAt)
    nodes[node].propertyCount += 1
    for i in nodes.indices where i != node && nodes[i].firstProperty >= insertAt {
      nodes[i].firstProperty += 1
    }
  }

  /// Sets property `name` on `node`.
  public mutating func setProperty(_ node: Int, _ name: StaticString, value: [UInt8]) {
    setProperty(node, named: ByteString.of(name), value: value)
  }

  /// Sets a NUL-terminated string property.
  public mutating func setStringProperty(_ node: Int, _ name: StaticString, _ value: [UInt8]) {
    setProperty(node, named: ByteString.of(name), value: value + [0])
  }

  /// Sets a 64-bit (two-cell) property.
  public mutating func setU64Property(_ node: Int, _ name: StaticString, _ value: UInt64) {
    var bytes: [UInt8] = []
    bytes.appendBE(value, width: 8)
    setProperty(node, named: ByteString.of(name), value: bytes)
  }

  /// Removes property `name` from `node` if present.
  public mutating func removeProperty(_ node: Int, _ name: StaticString) {
    guard node >= 0, node < nodes.count else { return }
    let key = ByteString.of(name)
    let n = nodes[node]
    for i in n.firstProperty..<(n.firstProperty + n.propertyCount) where properties[i].name == key {
      properties.remove(at: i)
      nodes[node].propertyCount -= 1
      for j in nodes.indices where j != node && nodes[j].firstProperty > i { nodes[j].firstProperty -= 1 }
      return
    }
  }

  /// Returns the index of child `name` of `parent`, adding an empty node when missing.
  public mutating func childNode(of parent: Int, named name: [UInt8]) -> Int {
    for c in children(of: parent) where nodes[c].name == name { return c }
    nodes.append(Node(name: name, parent: parent, firstProperty: properties.count, propertyCount: 0))
    return nodes.count - 1
  }

  /// The /chosen node, created when missing.
  public mutating func chosenNode() -> Int {
    if let c = node(atPath: "/chosen") { return c }
    return childNode(of: 0, named: ByteString.of("chosen"))
  }

  /// Writes the tree as a DTB blob (header, reservation block, structure block, strings).
  public func serialized() -> [UInt8] {
    var structure: [UInt8] = []
    var strings: [UInt8] = []
    var stringOffsets: [([UInt8], Int)] = []

    func stringOffset(_ name: [UInt8]) -> Int {
      for (s, o) in stringOffsets where s == name { return o }
      let o = strings.count
      strings.append(contentsOf: name)
      strings.append(0)
      stringOffsets.append((name, o))
      return o
    }
    func pad() { while structure.count % 4 != 0 { structure.append(0) } }

    // Emit in an order where every node follows its parent and precedes its siblings' children.
    var order: [Int] = []
    var work: [Int] = nodes.isEmpty ? [] : [0]
    while let n = work.popLast() {
      order.append(n)
      work.append(contentsOf: children(of: n).reversed())
    }
    var stack: [Int] = []
    for n in order {
      while let top = stack.last, top != nodes[n].parent {
        structure.appendBE(2, width: 4)
        stack.removeLast()
      }
      structure.appendBE(1, width: 4)
      structure.append(contentsOf: nodes[n].name)
      structure.append(0)
      pad()
      let node = nodes[n]
      for i in node.firstProperty..<(node.firstProperty + node.propertyCount) {
        let p = properties[i]
        structure.appendBE(3, width: 4)
        structure.appendBE(UInt64(p.value.count), width: 4)
        structure.appendBE(UInt64(stringOffset(p.name)), width: 4)
        structure.append(contentsOf: p.value)
        pad()
      }
      stack.append(n)
    }
    while !stack.isEmpty { structure.appendBE(2, width: 4); stack.removeLast() }
    structure.appendBE(9, width: 4)

    let rsvOffset = 48  // after the 40-byte header, 8-byte aligned
    let rsvSize = 16 * (reservations.count + 1)
    let structOffset = rsvOffset + rsvSize
    let stringsOffset = structOffset + structure.count
    let total = stringsOffset + strings.count
    var blob: [UInt8] = []
    blob.reserveCapacity(total + 8)
    for v in [0xD00D_FEED, total, structOffset, stringsOffset, rsvOffset, 17, 16, Int(bootCPU), strings.count, structure.count] {
      blob.appendBE(UInt64(v), width: 4)
    }
    while blob.count < rsvOffset { blob.append(0) }
    for r in reservations { blob.appendBE(r.address, width: 8); blob.appendBE(r.size, width: 8) }
    blob.appendBE(0, width: 8)  // terminating reservation entry
    blob.appendBE(0, width: 8)
    blob.append(contentsOf: structure)
    blob.append(contentsOf: strings)
    return blob
  }
}
