import DeviceTree
import Testing
@testable import RealmVMM

/// The machine's DTB, decoded back with libfdt and checked node by node against kvmtool's layout.
@Suite struct MachineDeviceTreeTests {
  static let inputs = MachineDeviceTree.Inputs(
    cpus: 2, ramBase: 0x8000_0000, ramSize: 256 << 20, bootArguments: "console=ttyS0 quiet",
    initrd: 0x8F00_0000..<0x8F12_3456, psciMethod: "hvc")

  func tree(_ inputs: MachineDeviceTree.Inputs = inputs) throws -> DeviceTreeReader {
    try DeviceTreeReader(MachineDeviceTree.build(inputs))
  }

  @Test func isPaddedToItsSlotAndDeterministic() throws {
    let first = try MachineDeviceTree.build(Self.inputs)
    #expect(first.count == 0x1_0000)
    #expect(try MachineDeviceTree.build(Self.inputs) == first)
    var other = Self.inputs
    other.bootArguments = "console=ttyS0"
    #expect(try MachineDeviceTree.build(other) != first)
  }

  @Test func rootAndChosen() throws {
    let dtb = try tree()
    #expect(dtb.children(of: "/") == ["chosen", "memory@80000000", "cpus", "psci", "intc@3fff0000", "timer", "uart@1000000", "boot-status@1010000", "pci@40000000"])
    #expect(dtb.strings("compatible", at: "/") == ["linux,dummy-virt"])
    #expect(dtb.cells("#address-cells", at: "/") == [2])
    #expect(dtb.cells("#size-cells", at: "/") == [2])
    let gicPHandle = try #require(dtb.cells("phandle", at: "/intc@3fff0000"))
    #expect(dtb.cells("interrupt-parent", at: "/") == gicPHandle)
    #expect(dtb.strings("bootargs", at: "/chosen") == ["console=ttyS0 quiet"])
    #expect(dtb.strings("stdout-path", at: "/chosen") == ["/uart@1000000"])
    #expect(dtb.cells("linux,initrd-start", at: "/chosen") == [0, 0x8F00_0000])
    #expect(dtb.cells("linux,initrd-end", at: "/chosen") == [0, 0x8F12_3456])
  }

  @Test func chosenWithoutInitrdOrArguments() throws {
    var inputs = Self.inputs
    inputs.initrd = nil
    inputs.bootArguments = nil
    #expect(try tree(inputs).propertyNames(at: "/chosen") == ["stdout-path"])
  }

  @Test func memoryAndCPUs() throws {
    let dtb = try tree()
    #expect(dtb.strings("device_type", at: "/memory@80000000") == ["memory"])
    #expect(dtb.cells("reg", at: "/memory@80000000") == [0, 0x8000_0000, 0, 0x1000_0000])
    #expect(dtb.children(of: "/cpus") == ["cpu@0", "cpu@1"])
    #expect(dtb.cells("reg", at: "/cpus/cpu@1") == [1])
    #expect(dtb.strings("enable-method", at: "/cpus/cpu@0") == ["psci"])
    #expect(dtb.strings("method", at: "/psci") == ["hvc"])
    #expect(dtb.strings("compatible", at: "/psci")?.contains("arm,psci-0.2") == true)
  }

  @Test func mpidrOfLargeVCPUNumbers() {
    #expect(MachineDeviceTree.mpidrAffinity(vcpu: 15) == 0x0F)
    #expect(MachineDeviceTree.mpidrAffinity(vcpu: 16) == 0x100)
    #expect(MachineDeviceTree.mpidrAffinity(vcpu: 35) == 0x203)
  }

  @Test func interruptControllerTimerUARTAndPCI() throws {
    let dtb = try tree()
    #expect(dtb.strings("compatible", at: "/intc@3fff0000") == ["arm,gic-v3"])
    // distributor 0x3FFF0000 + 64 KiB; two vCPUs' redistributors (2 x 128 KiB) just below
    #expect(dtb.cells("reg", at: "/intc@3fff0000") == [0, 0x3FFF_0000, 0, 0x1_0000, 0, 0x3FFB_0000, 0, 0x4_0000])
    #expect(dtb.cells("#interrupt-cells", at: "/intc@3fff0000") == [3])
    #expect(dtb.property("interrupt-controller", at: "/intc@3fff0000") == [])
    #expect(dtb.cells("interrupts", at: "/timer") == [1, 13, 8, 1, 14, 8, 1, 11, 8, 1, 10, 8])
    #expect(dtb.strings("compatible", at: "/uart@1000000") == ["ns16550a"])
    #expect(dtb.cells("reg", at: "/uart@1000000") == [0, 0x0100_0000, 0, 8])
    #expect(dtb.cells("interrupts", at: "/uart@1000000") == [0, 0, 4])
    #expect(dtb.strings("compatible", at: "/pci@40000000") == ["pci-host-ecam-generic"])
    #expect(dtb.cells("reg", at: "/pci@40000000")?.prefix(2) == [0, 0x4000_0000])
    #expect(dtb.cells("ranges", at: "/pci@40000000") == [0x0200_0000, 0, 0x5000_0000, 0, 0x5000_0000, 0, 0x3000_0000])
  }

  /// realm-run's boot-status page: its own node, one 4 KiB page after the UART's window, no
  /// interrupt, nothing else (Linux binds no driver to it).
  @Test func bootStatusPage() throws {
    let dtb = try tree()
    #expect(dtb.propertyNames(at: "/boot-status@1010000") == ["compatible", "reg"])
    #expect(dtb.strings("compatible", at: "/boot-status@1010000") == ["realm-run,boot-status"])
    #expect(dtb.cells("reg", at: "/boot-status@1010000") == [0, 0x0101_0000, 0, 0x1000])
    #expect(MemoryMap.bootStatusBase >= MemoryMap.uartBase + MemoryMap.uartWindow)
  }

  @Test func pciInterruptMapSwizzlesINTxOntoFourSPIs() throws {
    let dtb = try tree()
    let gic = try #require(dtb.cells("phandle", at: "/intc@3fff0000")?.first)
    #expect(dtb.cells("interrupt-map-mask", at: "/pci@40000000") == [0x1800, 0, 0, 7])
    let map = try #require(dtb.cells("interrupt-map", at: "/pci@40000000"))
    #expect(map.count == 16 * 10)
    // entry: child unit address (3 cells), pin, GIC phandle, parent unit address (2), GIC_SPI, SPI, level high
    let entries = stride(from: 0, to: map.count, by: 10).map { Array(map[$0..<$0 + 10]) }
    #expect(entries.first == [0, 0, 0, 1, gic, 0, 0, 0, 1, 4])  // slot 0 INTA -> SPI 1
    #expect(entries[4 + 1] == [1 << 11, 0, 0, 2, gic, 0, 0, 0, 3, 4])  // slot 1 INTB -> SPI 1 + (1 + 1) % 4
    #expect(Set(entries.map { $0[8] }) == [1, 2, 3, 4])
  }

  @Test func pmuNodeOnlyWithAPMU() throws {
    #expect(!(try tree()).hasNode("/pmu"))
    var inputs = Self.inputs
    inputs.pmu = true
    let dtb = try tree(inputs)
    #expect(dtb.strings("compatible", at: "/pmu") == ["arm,armv8-pmuv3"])
    #expect(dtb.cells("interrupts", at: "/pmu") == [1, 7, 4])  // PPI 7 (INTID 23), level high
  }

  @Test func realmsUseSMCForPSCI() throws {
    var inputs = Self.inputs
    inputs.psciMethod = "smc"
    #expect(try tree(inputs).strings("method", at: "/psci") == ["smc"])
  }
}
