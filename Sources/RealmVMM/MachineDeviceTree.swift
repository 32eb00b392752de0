import DeviceTree
import Devices

/// The machine's device tree, built the same way every time for the same configuration (a Realm
/// measures it byte for byte).
enum MachineDeviceTree {
  struct Inputs {
    var cpus: Int
    var ramBase: UInt64
    var ramSize: UInt64
    var bootArguments: String?
    var initrd: Range<UInt64>?
    var psciMethod: String
    var console: MachineConfig.Console = .serial
    /// The firmware's boot entry, if one is asked for.
    var bootEntry: String? = nil
    /// Whether the vCPUs have a PMUv3 (a `pmu` node).
    var pmu: Bool = false
    /// How the firmware boots the disk (FirmwareBootMode's name; nil for automatic).
    var bootMode: String? = nil
  }

  static func build(_ inputs: Inputs) throws(DeviceTreeError) -> [UInt8] {
    var tree = try DeviceTreeWriter(capacity: Int(BootLayout.deviceTreeSize))
    let gic = tree.allocatePHandle()
    let uartPath = "/uart@\(hex(MemoryMap.uartBase))"
    try tree.node("") { (tree) throws(DeviceTreeError) in
      try tree.property("compatible", string: "linux,dummy-virt")
      try tree.property("#address-cells", u32: 2)
      try tree.property("#size-cells", u32: 2)
      try tree.property("interrupt-parent", u32: gic)

      try tree.node("chosen") { (tree) throws(DeviceTreeError) in
        if let bootArguments = inputs.bootArguments {
          try tree.property("bootargs", string: bootArguments)
        }
        if inputs.console == .serial {
          try tree.property("stdout-path", string: uartPath)
        }
        if let bootEntry = inputs.bootEntry {
          try tree.property("realm-run,boot-entry", string: bootEntry)
        }
        if let bootMode = inputs.bootMode {
          try tree.property("realm-run,boot-mode", string: bootMode)
        }
        if let initrd = inputs.initrd {
          try tree.property("linux,initrd-start", u64: initrd.lowerBound)
          try tree.property("linux,initrd-end", u64: initrd.upperBound)
        }
      }

      try tree.node("memory@\(hex(inputs.ramBase))") { (tree) throws(DeviceTreeError) in
        try tree.property("device_type", string: "memory")
        try tree.property("reg", u64s: [inputs.ramBase, inputs.ramSize])
      }

      try tree.node("cpus") { (tree) throws(DeviceTreeError) in
        try tree.property("#address-cells", u32: 1)
        try tree.property("#size-cells", u32: 0)
        for cpu in 0..<inputs.cpus {
          let affinity = mpidrAffinity(vcpu: cpu)
          try tree.node("cpu@\(hex(UInt64(affinity)))") { (tree) throws(DeviceTreeError) in
            try tree.property("device_type", string: "cpu")
            try tree.property("compatible", string: "arm,arm-v8")
            try tree.property("enable-method", string: "psci")
            try tree.property("reg", u32: affinity)
          }
        }
      }

      try tree.node("psci") { (tree) throws(DeviceTreeError) in
        try tree.property("compatible", strings: ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
        try tree.property("method", string: inputs.psciMethod)
      }

      let redistributors = MemoryMap.gicRedistributorBase(cpus: inputs.cpus)
      try tree.node("intc@\(hex(MemoryMap.gicDistributorBase))") { (tree) throws(DeviceTreeError) in
        try tree.property("compatible", string: "arm,gic-v3")
        try tree.property("#interrupt-cells", u32: 3)
        try tree.property("interrupt-controller")
        try tree.property("#address-cells", u32: 2)
        try tree.property("#size-cells", u32: 2)
        try tree.property(
          "reg",
          u64s: [
            MemoryMap.gicDistributorBase, MemoryMap.gicDistributorSize,
            redistributors, UInt64(inputs.cpus) * MemoryMap.gicRedistributorStride,
          ])
        try tree.property("phandle", u32: gic)
      }

      try tree.node("timer") { (tree) throws(DeviceTreeError) in
        try tree.property("compatible", string: "arm,armv8-timer")
        try tree.property("always-on")
        // Secure, non-secure physical, virtual and hypervisor timers: PPIs 13, 14, 11, 10.
        try tree.property("interrupts", cells: [13, 14, 11, 10].flatMap { [GIC.ppi, $0, GIC.levelLow] })
      }

      if inputs.pmu {
        try tree.node("pmu") { (tree) throws(DeviceTreeError) in
          try tree.property("compatible", string: "arm,armv8-pmuv3")
          try tree.property("interrupts", cells: [GIC.ppi, MemoryMap.pmuPPI, GIC.levelHigh])
        }
      }

      try tree.node(String(uartPath.dropFirst())) { (tree) throws(DeviceTreeError) in
        try tree.property("compatible", string: "ns16550a")
        try tree.property("reg", u64s: [MemoryMap.uartBase, UART8250Window.registers])
        try tree.property("clock-frequency", u32: 1_843_200)
        try tree.property("interrupts", cells: [GIC.spi, MemoryMap.uartSPI, GIC.levelHigh])
      }

      // How a firmware that cannot boot says so (realm-run exits 4); Linux has no driver for it.
      try tree.node("boot-status@\(hex(MemoryMap.bootStatusBase))") { (tree) throws(DeviceTreeError) in
        try tree.property("compatible", string: "realm-run,boot-status")
        try tree.property("reg", u64s: [MemoryMap.bootStatusBase, BootStatus.size])
      }

      try tree.node("pci@\(hex(MemoryMap.pciConfigBase))") { (tree) throws(DeviceTreeError) in
        try tree.property("compatible", string: "pci-host-ecam-generic")
        try tree.property("device_type", string: "pci")
        try tree.property("#address-cells", u32: 3)
        try tree.property("#size-cells", u32: 2)
        try tree.property("#interrupt-cells", u32: 1)
        try tree.property("bus-range", cells: [0, 0])
        try tree.property("reg", u64s: [MemoryMap.pciConfigBase, PCIHostBridge.configSize])
        // One window: 32-bit memory space, identity-mapped (bus address = CPU address).
        try tree.property(
          "ranges",
          cells: [0x0200_0000] + split(MemoryMap.pciMemoryBase) + split(MemoryMap.pciMemoryBase)
            + split(MemoryMap.pciMemorySize))
        try tree.property("dma-coherent")
        // INTx: pin INTA..INTD of slot s is SPI pciINTxSPIBase + (s + pin - 1) % 4, level high; the
        // mask keeps the slot's low two bits and the pin, so 16 entries cover every slot.
        try tree.property("interrupt-map-mask", cells: [0x1800, 0, 0, 7])
        try tree.property(
          "interrupt-map",
          cells: (0..<4).flatMap { (slot: UInt32) in
            (1...4).flatMap { (pin: UInt32) in
              [slot << 11, 0, 0, pin, gic, 0, 0, GIC.spi, MemoryMap.pciINTxSPIBase + (slot + pin - 1) % 4, GIC.levelHigh]
            }
          })
      }
    }
    return try tree.finish()
  }

  /// The MPIDR affinity KVM gives vCPU `vcpu` (arch/arm64/kvm/sys_regs.c reset_mpidr): 16 CPUs
  /// per Aff0 cluster, so the DTB is known without asking KVM.
  static func mpidrAffinity(vcpu: Int) -> UInt32 {
    let id = UInt32(vcpu)
    return (id & 0x0F) | ((id >> 4) & 0xFF) << 8 | ((id >> 12) & 0xFF) << 16
  }

  private static func split(_ value: UInt64) -> [UInt32] {
    [UInt32(value >> 32), UInt32(truncatingIfNeeded: value)]
  }

  private static func hex(_ value: UInt64) -> String { String(value, radix: 16) }

  /// GIC interrupt specifier cells (dt-bindings/interrupt-controller/arm-gic.h).
  enum GIC {
    static let spi: UInt32 = 0
    static let ppi: UInt32 = 1
    static let levelHigh: UInt32 = 4
    static let levelLow: UInt32 = 8
  }

  enum UART8250Window {
    static let registers: UInt64 = 8
  }
}
