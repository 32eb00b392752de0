import FirmwareSupport
import FirmwareCore

/// SMCCC calls through the SMC or HVC instruction.
struct HardwareConduit: SMCConduit {
  var useSMC: Bool
  mutating func call(_ function: UInt32, _ arguments: [UInt64]) -> [UInt64] {
    var a = arguments
    while a.count < 7 { a.append(0) }
    // fw_smc/fw_hvc pass x1...x7 only; x8 and above must be zero (RSI_MEASUREMENT_EXTEND of a
    // value up to 40 bytes, e.g. a SHA-256 digest, fits).
    for extra in a.dropFirst(7) where extra != 0 { fail("SMC 0x\(ByteString.hex(UInt64(function))) needs more than 7 arguments") }
    let r = useSMC
      ? fw_smc(UInt64(function), a[0], a[1], a[2], a[3], a[4], a[5], a[6])
      : fw_hvc(UInt64(function), a[0], a[1], a[2], a[3], a[4], a[5], a[6])
    return [r.x0, r.x1, r.x2, r.x3, r.x4, r.x5, r.x6, r.x7, r.x8]
  }
}

/// Register access to memory-mapped devices (addresses already include any Realm shared bit).
enum MMIO {
  static func read8(_ a: UInt64) -> UInt8 { fw_mmio_read8(a) }
  static func read16(_ a: UInt64) -> UInt16 { fw_mmio_read16(a) }
  static func read32(_ a: UInt64) -> UInt32 { fw_mmio_read32(a) }
  static func write8(_ a: UInt64, _ v: UInt8) { fw_mmio_write8(a, v) }
  static func write16(_ a: UInt64, _ v: UInt16) { fw_mmio_write16(a, v) }
  static func write32(_ a: UInt64, _ v: UInt32) { fw_mmio_write32(a, v) }
  static func write64(_ a: UInt64, _ v: UInt64) {
    fw_mmio_write32(a, UInt32(truncatingIfNeeded: v))
    fw_mmio_write32(a + 4, UInt32(truncatingIfNeeded: v >> 32))
  }
}

/// Milliseconds elapsed since `start` on the generic timer.
func millisecondsSince(_ start: UInt64) -> UInt64 { milliseconds(ticks: fw_read_cntvct() &- start) }

/// A span of generic-timer ticks in milliseconds.
func milliseconds(ticks: UInt64) -> UInt64 {
  let perMillisecond = fw_read_cntfrq() / 1000
  return ticks / (perMillisecond == 0 ? 1 : perMillisecond)
}

/// Prints a line prefixed with "realm-fw: ".
func log(_ message: String) {
  print("realm-fw: " + message)
}

/// Why one boot attempt failed before anything irreversible happened: the boot manager moves on.
struct BootFailure: Error {
  var reason: String
  init(_ reason: String) { self.reason = reason }
}

/// Prints a fatal error, reports it on realm-run's boot-status page (when the machine has one:
/// realm-run then exits 4 with the message) and powers off.
func fail(_ message: String) -> Never {
  print("realm-fw: error: " + message)
  for byte in message.utf8 { fw_boot_status_putc(byte) }
  fw_boot_status_fail(UInt32(FW_BOOT_FAILED))
  fw_system_off()
}
