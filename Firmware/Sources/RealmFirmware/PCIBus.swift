import FirmwareCore

/// One PCI function reached through ECAM.
struct PCIFunction {
  let config: UInt64  // CPU address of its 4 KiB configuration space
  let bus: UInt32, device: UInt32, function: UInt32

  var vendorID: UInt16 { MMIO.read16(config) }
  var deviceID: UInt16 { MMIO.read16(config + 2) }
  func read8(_ off: UInt64) -> UInt8 { MMIO.read8(config + off) }
  func read16(_ off: UInt64) -> UInt16 { MMIO.read16(config + off) }
  func read32(_ off: UInt64) -> UInt32 { MMIO.read32(config + off) }
  func write16(_ off: UInt64, _ v: UInt16) { MMIO.write16(config + off, v) }
  func write32(_ off: UInt64, _ v: UInt32) { MMIO.write32(config + off, v) }

  /// Offsets of the capabilities with id `id` in the standard list.
  func capabilities(id: UInt8) -> [UInt64] {
    guard read16(6) & (1 << 4) != 0 else { return [] }
    var result: [UInt64] = []
    var ptr = UInt64(read8(0x34) & 0xFC)
    var guardCount = 0
    while ptr >= 0x40 && guardCount < 48 {
      if read8(ptr) == id { result.append(ptr) }
      ptr = UInt64(read8(ptr + 1) & 0xFC)
      guardCount += 1
    }
    return result
  }
}

/// A memory BAR after assignment: its CPU address and size.
struct PCIBar {
  var cpuAddress: UInt64
  var size: UInt64
}

/// ECAM enumeration and BAR assignment from the host bridge's `ranges`.
struct PCIBus {
  let host: PCIHostBridge
  let mmioAlias: UInt64  // OR-ed into CPU addresses (the Realm shared bit, else 0)
  var nextMemory32: UInt64 = 0
  var memory32: PCIWindow?

  init(host: PCIHostBridge, mmioAlias: UInt64) {
    self.host = host
    self.mmioAlias = mmioAlias
    memory32 = host.windows.first { $0.space == .memory32 && !$0.prefetchable } ?? host.windows.first { $0.space == .memory32 }
    nextMemory32 = memory32?.pciAddress ?? 0
  }

  /// Every present function on the host bridge's first bus (QEMU virt and kvmtool put their
  /// devices there; bridges are not configured).
  func functions() -> [PCIFunction] {
    var found: [PCIFunction] = []
    for dev: UInt64 in 0..<32 {
      for fn: UInt64 in 0..<8 {
        let offset = dev << 15 | fn << 12
        guard offset < host.ecamSize else { return found }
        let f = PCIFunction(config: (host.ecamBase + offset) | mmioAlias, bus: host.firstBus,
                            device: UInt32(dev), function: UInt32(fn))
        if f.vendorID == 0xFFFF { if fn == 0 { break } else { continue } }
        found.append(f)
        if fn == 0 && f.read8(0x0E) & 0x80 == 0 { break }
      }
    }
    return found
  }

  /// Sizes every memory BAR of `f`, assigns unassigned ones from the 32-bit window, enables
  /// memory decoding and bus mastering. Returns BARs by index (nil for unused/IO).
  mutating func configure(_ f: PCIFunction) -> [PCIBar?] {
    var bars: [PCIBar?] = Array(repeating: nil, count: 6)
    let command = f.read16(4)
    f.write16(4, command & ~0x7)
    var i = 0
    while i < 6 {
      let reg = 0x10 + UInt64(i) * 4
      let original = f.read32(reg)
      if original & 1 != 0 { i += 1; continue }  // I/O BAR: unused here
      let is64 = (original >> 1) & 3 == 2
      f.write32(reg, 0xFFFF_FFFF)
      var mask = UInt64(f.read32(reg) & ~0xF)
      var address = UInt64(original & ~0xF)
      if is64 && i < 5 {
        let originalHigh = f.read32(reg + 4)
        f.write32(reg + 4, 0xFFFF_FFFF)
        mask |= UInt64(f.read32(reg + 4)) << 32
        address |= UInt64(originalHigh) << 32
        f.write32(reg + 4, originalHigh)
      } else {
        mask |= 0xFFFF_FFFF_0000_0000
      }
      f.write32(reg, original)
      let size = mask == 0 ? 0 : (~mask &+ 1)
      if size > 0 {
        if address == 0, let window = memory32 {
          let aligned = (nextMemory32 + size - 1) & ~(size - 1)
          if aligned + size <= window.pciAddress + window.size {
            address = aligned
            nextMemory32 = aligned + size
            f.write32(reg, UInt32(truncatingIfNeeded: address) | (original & 0xF))
            if is64 { f.write32(reg + 4, UInt32(truncatingIfNeeded: address >> 32)) }
          }
        }
        if address != 0 { bars[i] = PCIBar(cpuAddress: cpuAddress(ofPCI: address), size: size) }
      }
      i += is64 ? 2 : 1
    }
    f.write16(4, (command & ~0x7) | 0x6)  // memory space + bus master
    return bars
  }

  /// Translates a PCI memory address through the host bridge windows.
  func cpuAddress(ofPCI address: UInt64) -> UInt64 {
    for w in host.windows where w.space != .io && address >= w.pciAddress && address - w.pciAddress < w.size {
      return w.cpuAddress + (address - w.pciAddress)
    }
    return address
  }
}
