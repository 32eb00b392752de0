/// The guest physical memory map, kvmtool's arm64 layout (arm/include/arm-common/kvm-arch.h), so
/// that guests, firmware and measurements made for kvmtool's machine fit this one.
///
/// Every device sits in the low half. A Realm reaches them through the unprotected alias (the same
/// offsets with the top IPA bit set); the DTB keeps the plain addresses and the guest adds the bit.
public enum MemoryMap {
  /// 16550A UART (8 byte-wide registers in a 64 KiB window).
  public static let uartBase: UInt64 = 0x0100_0000
  public static let uartWindow: UInt64 = 0x1_0000

  /// The boot-status page (``BootStatus``, realm-run's own device), the 4 KiB after the UART's window.
  public static let bootStatusBase: UInt64 = 0x0101_0000

  /// GICv3 distributor: the 64 KiB just below the PCI ECAM window.
  public static let gicDistributorBase: UInt64 = 0x3FFF_0000
  public static let gicDistributorSize: UInt64 = 0x1_0000
  /// Each vCPU's redistributor frames (RD + SGI, 64 KiB each).
  public static let gicRedistributorStride: UInt64 = 0x2_0000

  /// The redistributor region for `cpus` vCPUs, just below the distributor.
  public static func gicRedistributorBase(cpus: Int) -> UInt64 {
    gicDistributorBase - UInt64(cpus) * gicRedistributorStride
  }

  /// PCI configuration space (ECAM), one bus: its size is the host bridge's (PCIHostBridge).
  public static let pciConfigBase: UInt64 = 0x4000_0000
  /// PCI memory window for BARs.
  public static let pciMemoryBase: UInt64 = 0x5000_0000
  public static let pciMemorySize: UInt64 = 0x3000_0000

  /// Guest RAM starts here (kvmtool's ARM_MEMORY_AREA).
  public static let ramBase: UInt64 = 0x8000_0000

  /// The most RAM the map allows (RAM must end below the 1 TiB a 41-bit Realm IPA space leaves).
  public static let maximumRAM: UInt64 = 0x80_0000_0000 - ramBase

  /// SPI numbers (GIC INTID 32 + n).
  public static let uartSPI: UInt32 = 0
  /// The four PCI INTx lines (INTA..INTD), swizzled by slot.
  public static let pciINTxSPIBase: UInt32 = 1

  /// The PMU's overflow interrupt: PPI 7, GIC INTID 23 (as kvmtool and QEMU use).
  public static let pmuPPI: UInt32 = 7

  /// Interrupts the GIC is sized for: 32 private + 64 shared.
  public static let gicInterruptCount: UInt32 = 96
}
