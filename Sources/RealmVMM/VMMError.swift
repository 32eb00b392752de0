import DeviceTree
import Devices
import GuestMemory
import KVM
import Platform

/// Everything that can stop realm-run from building or running a machine, each with a one-line
/// description that names the cause (and the fix, where there is one).
public enum VMMError: Error, CustomStringConvertible {
  case file(path: String, errno: Errno, action: String)
  case invalidImage(path: String, reason: String)
  case placement(BootLayout.PlacementError)
  case kvm(KVMError)
  case memory(GuestMemoryError)
  case deviceTree(DeviceTreeError)
  /// A device could not be created (a disk image missing, unreadable or locked; the I/O thread).
  case device(MachineDevicesError)
  /// Two devices' MMIO windows overlap (realm-run's own memory map is wrong).
  case deviceLayout(BusError)
  case unsupportedHost(String)
  /// `--realm` on a host whose kernel offers no CCA support.
  case noRealmSupport(String)
  /// Something the guest did that realm-run cannot go on from.
  case guest(String)

  public var description: String {
    switch self {
    case .file(let path, let errno, let action):
      return "cannot \(action) \(path): \(errno)"
    case .invalidImage(let path, let reason):
      return "\(path): \(reason)"
    case .placement(let error):
      return error.description
    case .kvm(let error):
      return error.description
    case .memory(let error):
      return error.description
    case .deviceTree(let error):
      return error.description
    case .device(let error):
      return error.description
    case .deviceLayout(let error):
      return "device layout: \(error)"
    case .unsupportedHost(let what):
      return what
    case .noRealmSupport(let why):
      return "\(why); run a normal VM with --no-realm"
    case .guest(let what):
      return what
    }
  }
}

/// How a guest's run ended.
public enum Outcome: Equatable, Sendable {
  /// The guest powered off (PSCI SYSTEM_OFF).
  case poweredOff
  /// The firmware reported on the boot-status page that it could not boot the guest, then powered
  /// it off; `reason` is its sanitized reason (possibly empty).
  case firmwareFailed(code: UInt32, reason: String)
  /// The guest asked for a reset (PSCI SYSTEM_RESET); realm-run does not restart it.
  case reset
  /// The guest reported a crash, or stopped in a way KVM could not continue.
  case crashed(String)
  /// `--timeout` passed first.
  case timedOut
  /// The user typed the console's quit sequence.
  case quit
  /// A console line matched `--until` (the run's goal: the guest is stopped).
  case consoleMatched(String)
  /// A console line matched `--fail-on`.
  case consoleFailure(String)
  /// realm-run was asked to stop by SIGINT, SIGTERM or SIGHUP (see ``TerminationSignals``).
  case signalled(Int32)

  /// How a power-off ended the run: a failure if the firmware reported one before it.
  init(poweredOffAfter failure: BootStatus.Failure?) {
    if let failure {
      self = .firmwareFailed(code: failure.code, reason: failure.reason)
    } else {
      self = .poweredOff
    }
  }
}
