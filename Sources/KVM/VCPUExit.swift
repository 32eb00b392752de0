import CKVM
import FirmwareCore

/// Why `KVM_RUN` returned to the VMM.
public enum VCPUExit: Equatable, Sendable {
  /// A load or store outside RAM. For a write, `data` holds the value (little-endian, `size` bytes).
  case mmio(address: UInt64, size: Int, isWrite: Bool, data: UInt64)
  /// PSCI SYSTEM_OFF / SYSTEM_RESET / a guest crash report, or an event this VMM does not know.
  case systemEvent(SystemEvent)
  /// An SMCCC call forwarded to userspace (`KVM_EXIT_HYPERCALL`).
  case hypercall(function: UInt64, arguments: [UInt64], viaSMC: Bool)
  /// The guest touched memory whose private/shared state must change (guest_memfd VMs).
  case memoryFault(address: UInt64, size: UInt64, toPrivate: Bool)
  /// The guest asked to shut down through a path other than PSCI (`KVM_EXIT_SHUTDOWN`).
  case shutdown
  /// KVM could not continue the guest.
  case internalError(suberror: UInt32)
  /// A signal or `requestExit()` interrupted `KVM_RUN`.
  case interrupted
  /// Any other exit reason.
  case unknown(reason: UInt32)

  /// A `KVM_EXIT_SYSTEM_EVENT` type.
  public enum SystemEvent: Equatable, Sendable {
    case shutdown
    case reset
    case crash
    case other(UInt32)
  }

  init(decoding run: ckvm_run) {
    switch Int(run.exit_reason) {
    case Int(CKVM_EXIT_MMIO):
      let size = Int(min(run.mmio.len, 8))
      let data = withUnsafeBytes(of: run.mmio.data) { $0.unsignedInteger(at: 0, width: size) } ?? 0
      self = .mmio(address: run.mmio.phys_addr, size: size, isWrite: run.mmio.is_write != 0, data: data)
    case Int(CKVM_EXIT_SYSTEM_EVENT):
      switch Int(run.system_event.type) {
      case Int(CKVM_SYSTEM_EVENT_SHUTDOWN): self = .systemEvent(.shutdown)
      case Int(CKVM_SYSTEM_EVENT_RESET): self = .systemEvent(.reset)
      case Int(CKVM_SYSTEM_EVENT_CRASH): self = .systemEvent(.crash)
      default: self = .systemEvent(.other(run.system_event.type))
      }
    case Int(CKVM_EXIT_HYPERCALL):
      let args = withUnsafeBytes(of: run.hypercall.args) { Array($0.bindMemory(to: UInt64.self)) }
      self = .hypercall(
        function: run.hypercall.nr, arguments: args,
        viaSMC: run.hypercall.flags & CKVM_HYPERCALL_EXIT_SMC != 0)
    case Int(CKVM_EXIT_MEMORY_FAULT):
      self = .memoryFault(
        address: run.memory_fault.gpa, size: run.memory_fault.size,
        toPrivate: run.memory_fault.flags & CKVM_MEMORY_EXIT_FLAG_PRIVATE != 0)
    case Int(CKVM_EXIT_SHUTDOWN):
      self = .shutdown
    case Int(CKVM_EXIT_INTERNAL_ERROR):
      self = .internalError(suberror: run.internal.suberror)
    case Int(CKVM_EXIT_INTR):
      self = .interrupted
    default:
      self = .unknown(reason: run.exit_reason)
    }
  }
}
