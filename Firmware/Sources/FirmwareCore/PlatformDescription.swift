/// A RAM range from a /memory node.
public struct MemoryRange: Equatable {
  public var base: UInt64
  public var size: UInt64
  public init(base: UInt64, size: UInt64) { self.base = base; self.size = size }
  /// One past the last byte (saturating).
  public var end: UInt64 { let (e, o) = base.addingReportingOverflow(size); return o ? UInt64.max : e }
}

/// The serial console the firmware prints to.
public struct ConsoleDevice: Equatable {
  public enum Kind: Equatable { case pl011, uart8250 }
  public var kind: Kind
  public var base: UInt64
  /// log2 of the register stride (8250 `reg-shift`).
  public var registerShift: UInt32
  /// Register access width in bytes (8250 `reg-io-width`: 1 or 4).
  public var ioWidth: UInt32
  public init(kind: Kind, base: UInt64, registerShift: UInt32, ioWidth: UInt32) {
    self.kind = kind; self.base = base; self.registerShift = registerShift; self.ioWidth = ioWidth
  }
}

/// One window of a PCI host bridge `ranges` property.
public struct PCIWindow: Equatable {
  public enum Space: Equatable { case io, memory32, memory64 }
  public var space: Space
  public var prefetchable: Bool
  public var pciAddress: UInt64
  public var cpuAddress: UInt64
  public var size: UInt64
  public init(space: Space, prefetchable: Bool, pciAddress: UInt64, cpuAddress: UInt64, size: UInt64) {
    self.space = space; self.prefetchable = prefetchable; self.pciAddress = pciAddress
    self.cpuAddress = cpuAddress; self.size = size
  }
}

/// A generic ECAM PCI host bridge.
public struct PCIHostBridge: Equatable {
  public var ecamBase: UInt64
  public var ecamSize: UInt64
  public var firstBus: UInt32
  public var lastBus: UInt32
  public var windows: [PCIWindow]
}

/// The SMCCC conduit named by /psci `method`.
public enum SMCConduitKind: Equatable { case hvc, smc }

/// What the firmware needs from the device tree it was given.
public struct PlatformDescription {
  public var memory: [MemoryRange] = []
  public var console: ConsoleDevice?
  public var pciHost: PCIHostBridge?
  public var psciConduit: SMCConduitKind?
  /// /chosen/bootargs without the NUL.
  public var bootArguments: [UInt8] = []
  /// /chosen linux,initrd-start and -end when both are present.
  public var initrd: (start: UInt64, end: UInt64)?
  /// /chosen realm-run,boot-entry: the boot entry id to use instead of the default.
  public var bootEntry: [UInt8]?
  /// /chosen realm-run,boot-mode (automatic when absent or unknown: realm-run writes only known names).
  public var bootMode: FirmwareBootMode = .automatic
  /// The base of realm-run's boot-status page (compatible "realm-run,boot-status"), where the
  /// firmware reports why it cannot boot; nil on other machines (QEMU's `virt`).
  public var bootStatus: UInt64?

  /// The boot-status page's compatible string.
  public static let bootStatusCompatible: StaticString = "realm-run,boot-status"

  /// Reads the description from a parsed tree.
  public init(tree: DeviceTree) throws(DeviceTreeError) {
    for node in tree.children(of: 0) {
      let isMemory = tree.baseName(node) == ByteString.of("memory")
        || tree.property(node, "device_type").map { DeviceTree.string($0) } == ByteString.of("memory")
      guard isMemory, tree.isEnabled(node) else { continue }
      for r in try tree.registers(of: node) where r.size > 0 {
        memory.append(MemoryRange(base: r.address, size: r.size))
      }
    }
    memory.sort { $0.base < $1.base }

    if let chosen = tree.node(atPath: "/chosen") {
      if let args = tree.property(chosen, "bootargs") { bootArguments = DeviceTree.string(args) }
      if let s = tree.property(chosen, "linux,initrd-start"), let e = tree.property(chosen, "linux,initrd-end"),
         let start = DeviceTree.readCells(s, at: 0, cells: s.count / 4),
         let end = DeviceTree.readCells(e, at: 0, cells: e.count / 4)
      {
        initrd = (start, end)
      }
      if let entry = tree.property(chosen, "realm-run,boot-entry") { bootEntry = DeviceTree.string(entry) }
      if let mode = tree.property(chosen, FirmwareBootMode.propertyName) {
        bootMode = FirmwareBootMode(name: DeviceTree.string(mode)) ?? .automatic
      }
      if let path = tree.property(chosen, "stdout-path") {
        var p = DeviceTree.string(path)
        if let colon = p.firstIndex(of: 58) { p = Array(p[..<colon]) }
        if let node = tree.resolve(pathOrAlias: p) { console = try PlatformDescription.console(tree, node) }
      }
    }
    if console == nil {
      for node in tree.nodes.indices where tree.isEnabled(node) {
        if let c = try PlatformDescription.console(tree, node) { console = c; break }
      }
    }

    if let psci = tree.node(atPath: "/psci"), let method = tree.property(psci, "method") {
      let m = DeviceTree.string(method)
      if m == ByteString.of("smc") { psciConduit = .smc } else if m == ByteString.of("hvc") { psciConduit = .hvc }
    }

    for node in tree.nodes.indices where tree.isCompatible(node, PlatformDescription.bootStatusCompatible) && tree.isEnabled(node) {
      // Its two registers (a 32-bit code, a byte port) fill the first 8 bytes.
      if let reg = try tree.registers(of: node).first, reg.size >= 8 { bootStatus = reg.address }
      break
    }

    for node in tree.nodes.indices where tree.isCompatible(node, "pci-host-ecam-generic") && tree.isEnabled(node) {
      pciHost = try PlatformDescription.pciHost(tree, node)
      break
    }
  }

  /// Parses `blob` and reads its description.
  public init(blob: [UInt8]) throws(DeviceTreeError) {
    try self.init(tree: DeviceTree(blob: blob))
  }

  static func console(_ tree: DeviceTree, _ node: Int) throws(DeviceTreeError) -> ConsoleDevice? {
    let kind: ConsoleDevice.Kind
    if tree.isCompatible(node, "arm,pl011") {
      kind = .pl011
    } else if tree.isCompatible(node, "ns16550a") || tree.isCompatible(node, "ns16550")
      || tree.isCompatible(node, "ns8250") || tree.isCompatible(node, "snps,dw-apb-uart")
    {
      kind = .uart8250
    } else {
      return nil
    }
    guard let reg = try tree.registers(of: node).first else { return nil }
    let shift = tree.property(node, "reg-shift").flatMap { $0.be32(at: 0) } ?? 0
    let width = tree.property(node, "reg-io-width").flatMap { $0.be32(at: 0) } ?? (kind == .pl011 ? 4 : 1)
    guard shift <= 4, width == 1 || width == 4 else { return nil }
    return ConsoleDevice(kind: kind, base: reg.address, registerShift: shift, ioWidth: width)
  }

  static func pciHost(_ tree: DeviceTree, _ node: Int) throws(DeviceTreeError) -> PCIHostBridge? {
    guard let ecam = try tree.registers(of: node).first else { return nil }
    var first: UInt32 = 0
    var last: UInt32 = UInt32(min(255, max(1, ecam.size >> 20) - 1))
    if let range = tree.property(node, "bus-range"), let a = range.be32(at: 0), let b = range.be32(at: 4) {
      guard a <= b, b <= 255 else { throw .malformedStructure(offset: 0) }
      first = a
      last = b
    }
    var windows: [PCIWindow] = []
    if let ranges = tree.property(node, "ranges") {
      let parentCells = tree.cells(of: tree.nodes[node].parent).address
      let sizeCells = tree.cells(of: node).size
      guard (1...2).contains(parentCells), (1...2).contains(sizeCells) else { throw .malformedStructure(offset: 0) }
      let stride = 4 * (3 + parentCells + sizeCells)
      guard ranges.count % stride == 0 else { throw .malformedStructure(offset: 0) }
      var off = 0
      while off < ranges.count {
        guard let hi = ranges.be32(at: off), let pci = ranges.be64(at: off + 4),
              let cpu = DeviceTree.readCells(ranges, at: off + 12, cells: parentCells),
              let size = DeviceTree.readCells(ranges, at: off + 12 + 4 * parentCells, cells: sizeCells)
        else { throw .truncated }
        let space: PCIWindow.Space?
        switch (hi >> 24) & 3 {
        case 1: space = .io
        case 2: space = .memory32
        case 3: space = .memory64
        default: space = nil
        }
        if let space { windows.append(PCIWindow(space: space, prefetchable: hi & (1 << 30) != 0,
                                                 pciAddress: pci, cpuAddress: cpu, size: size)) }
        off += stride
      }
    }
    return PCIHostBridge(ecamBase: ecam.address, ecamSize: ecam.size, firstBus: first, lastBus: last, windows: windows)
  }
}
